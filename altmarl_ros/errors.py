"""Which exceptions are the user's (one clear line) and which are bugs (full traceback). ROS-free, imports nothing.

A user error is bad input that this package detected and described: an instance of `UserError`
(ConfigError, PolicyFileError, GameFileError, ParameterError, BagError, WorldFileError, InputError; each
also a ValueError, so `except ValueError` keeps working), or an OSError naming a file (missing,
unreadable, a directory, ...). Anything else, including a ValueError raised by NumPy or by a conversion
in our own code (`int('x')`, broadcasting), is a programming error and keeps its traceback.

Where input is validated, raise the specific class (or `InputError` when none fits), never a plain
ValueError: a plain ValueError is reported as a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """Mixin of every error that describes bad user input in one line (combine it with ValueError)."""


class InputError(UserError, ValueError):
    """A bad argument or option value (a CLI flag, a library argument) that no more specific class names."""


def is_user_error(exc: BaseException) -> bool:
    """Whether `exc` is the user's: a `UserError`, or an OSError that names a file."""
    if isinstance(exc, UserError):
        return True
    return isinstance(exc, OSError) and exc.filename is not None
