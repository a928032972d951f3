"""Small helpers for plugins: open a path or stdin/stdout."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from .errors import FormatError


def check_regular(path) -> None:
    """Refuse an input that is not a regular file (a FIFO, a device such as /dev/zero, a
    socket), also through a symlink, before anything opens it: open() of a FIFO blocks, and
    a device never ends. A missing path or a directory is left to the caller to report."""
    if str(path) == "-":
        return
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
    raise FormatError(f"{path}: {kind}, not a regular file; only regular files (and - for stdin) are read")


@contextlib.contextmanager
def open_input(path: Path):
    """A binary file for reading; ``-`` is stdin (not closed afterwards)."""
    if str(path) == "-":
        yield sys.stdin.buffer
    else:
        check_regular(path)
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
