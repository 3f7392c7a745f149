"""A dependency-free progress bar on stderr: redrawn in place on a terminal, a line per 10 % otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Progress(total, label); update(done) with the absolute count; close() at the end."""

    def __init__(self, total: int, label: str = "steps", *, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = max(int(total), 1), label, enabled
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.shown_tenth = -1
        self.done = 0

    def update(self, done: int, note: str = "") -> None:
        self.done = done = min(done, self.total)
        tenth = 10 * done // self.total
        if not self.enabled or (not self.tty and tenth == self.shown_tenth):
            return
        self.shown_tenth = tenth
        elapsed = time.monotonic() - self.t0
        left = f"~{elapsed / done * (self.total - done):5.0f}s left" if done else "      "
        bar = "#" * (30 * done // self.total)
        line = f"[{bar:<30}] {done}/{self.total} {self.label}  {elapsed:6.1f}s elapsed, {left} {note}"
        sys.stderr.write(f"\r{line}\033[K" if self.tty else line + "\n")
        sys.stderr.flush()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.update(self.done + n, note)

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
