"""Small helpers for plugins: open a path or stdin/stdout."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path


@contextlib.contextmanager
def open_input(path: Path):
    """A binary file for reading; ``-`` is stdin (not closed afterwards)."""
    if str(path) == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


@contextlib.contextmanager
def open_output(path: Path):
    """A binary file for writing; ``-`` is stdout (flushed, not closed)."""
    if str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    else:
        with open(path, "xb") as f:
            yield f
