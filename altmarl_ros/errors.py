"""Which exceptions are the user's (one clear line) and which are bugs (full traceback). ROS-free.

A user error is bad input that this package detected and described: a ValueError (ConfigError,
PolicyFileError, ParameterError, GameFileError, ... or a plain ValueError) raised by a `raise`
statement inside altmarl_ros, or an OSError naming a file (missing, unreadable, a directory, ...).
Anything else, including a ValueError raised by NumPy or by a conversion in our own code
(`int('x')`, broadcasting), is a programming error and keeps its traceback.
"""

from __future__ import annotations

import linecache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.filename is not None
    if not isinstance(exc, ValueError):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    if not Path(filename).resolve().is_relative_to(PACKAGE_DIR):
        return False
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise ")
