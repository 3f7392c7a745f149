"""JAX's persistent compilation cache for the continuous trainer (on by default in `altmarl train` / `sweep`).

A cold training compiles three XLA programs (the G-step, the L-step, the in-loop rollouts), ~12-15 s of one
core at k = 75 (bench/README 13.1); JAX can keep compiled programs on disk and load them in a later process
instead of compiling again. The cache is keyed by the program, the JAX / XLA version and the machine, so a
loaded program is the one that would have been compiled (results are identical, `test_continuous_train`).

`ALTMARL_JAX_CACHE` chooses: unset -> `$XDG_CACHE_HOME/altmarl_ros/jax` (default `~/.cache/altmarl_ros/jax`),
a path -> that directory, `off` -> no persistent cache. A directory that cannot be created disables the cache
with a warning (training goes on, compiling as usual).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

ENV_VAR = "ALTMARL_JAX_CACHE"
MIN_COMPILE_SECONDS = 0.0  # every program: the ~30 small ones (key splits, conversions) cost ~0.8 s to compile


def cache_dir() -> Path | None:
    """The directory `enable` uses (None: switched off)."""
    choice = os.environ.get(ENV_VAR, "").strip()
    if choice.lower() in ("off", "0", "none", "false"):
        return None
    if choice:
        return Path(choice).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "altmarl_ros" / "jax"


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
    return path
