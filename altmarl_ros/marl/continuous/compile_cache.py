"""JAX's persistent compilation cache for the continuous trainer (on by default in `altmarl train` / `sweep`).

A cold training compiles three XLA programs (a G-step PPO iteration, an L-step one, the in-loop rollouts),
~12.6 s of one core at k = 75 (bench/README 13.1); JAX can keep compiled programs on disk and load them in a
later process instead of compiling again. The cache is keyed by the program, the JAX / XLA version and the machine, so a
loaded program is the one that would have been compiled (results are identical, `test_continuous_train`).

A warm process still traces and lowers every program before it can look it up (~0.7 s for each PPO iteration
program). `exported_call` therefore also keeps those programs as serialized `jax.export` modules in the
same directory, keyed by the function, its static arguments, the shapes and dtypes of its inputs, the source of
this subpackage and the versions of jax, jaxlib and optax: a later process deserializes the module instead of
tracing the Python code, and loads its compiled form from the cache. An unreadable module is exported again.

`ALTMARL_JAX_CACHE` chooses: unset -> `$XDG_CACHE_HOME/altmarl_ros/jax` (default `~/.cache/altmarl_ros/jax`),
a path -> that directory, `off` -> no persistent cache. A directory that cannot be created disables the cache
with a warning (training goes on, compiling as usual).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ENV_VAR = "ALTMARL_JAX_CACHE"
_exports: Path | None = None  # where `exported_call` keeps modules; set by `enable`
_loaded: dict[str, Callable[..., Any]] = {}
MIN_COMPILE_SECONDS = 0.0  # every program: the ~30 small ones (key splits, conversions) cost ~0.8 s to compile


def cache_dir() -> Path | None:
    """The directory `enable` uses (None: switched off)."""
    choice = os.environ.get(ENV_VAR, "").strip()
    if choice.lower() in ("off", "0", "none", "false"):
        return None
    if choice:
        return Path(choice).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "altmarl_ros" / "jax"


def enabled() -> bool:
    """Whether `enable` has pointed this process's JAX at a cache directory."""
    return _exports is not None


def enable() -> Path | None:
    """Point JAX's persistent compilation cache at `cache_dir()`; returns it (None: off or unusable)."""
    import jax

    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        warnings.warn(f"{ENV_VAR}: cannot use {path} ({exc}); compiling without a persistent cache", stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    global _exports
    _exports = path / "exported"
    return path


@cache
def _code_version() -> str:
    """Digest of this subpackage's source and of the traced libraries' versions."""
    h = hashlib.sha256()
    for dist in ("jax", "jaxlib", "optax"):
        h.update(f"{dist}={importlib.metadata.version(dist)};".encode())
    for src in sorted(Path(__file__).parent.glob("*.py")):
        h.update(src.name.encode() + src.read_bytes())
    return h.hexdigest()


def exported_call(fn: Callable[..., Any], static: tuple, args: tuple, out_tree: Any) -> Any:
    """fn(*static, *args) for a jitted `fn` whose static arguments lead, through its exported module (see the
    module docstring) when `enable` found a directory, else directly. args: pytrees of arrays (no PRNG key
    arrays: pass their `key_data`); out_tree: the tree structure of fn's result."""
    import jax
    from jax import export

    if _exports is None:
        return fn(*static, *args)
    leaves, in_tree = jax.tree_util.tree_flatten(args)
    signature = repr((fn.__module__, fn.__qualname__, static, str(in_tree),
                      [(x.shape, str(x.dtype)) for x in leaves], _code_version()))
    name = hashlib.sha256(signature.encode()).hexdigest()
    call = _loaded.get(name)
    if call is None:
        path = _exports / f"{name}.jaxexport"
        try:
            module = export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # absent, torn or from another version: export again
            def flat(*xs: Any) -> list[Any]:
                return jax.tree_util.tree_leaves(fn(*static, *jax.tree_util.tree_unflatten(in_tree, xs)))

            module = export.export(jax.jit(flat))(*leaves)
            _write_atomically(path, module.serialize())
        call = _loaded[name] = jax.jit(module.call)
    # committed to the device: the exported call is lowered (and compiled) once per placement of its inputs
    return jax.tree_util.tree_unflatten(out_tree, call(*jax.device_put(leaves, jax.devices()[0])))


def _write_atomically(path: Path, data: bytes | bytearray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)
    except OSError as exc:
        warnings.warn(f"{ENV_VAR}: cannot write {path} ({exc}); the next process traces again", stacklevel=3)
