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


_data_stdout = None  # the real stdout while data_stdout() holds it


@contextlib.contextmanager
def data_stdout():
    """For a conversion to ``-``: ``open_output("-")`` keeps the real stdout, and Python-level
    ``sys.stdout`` points at stderr meanwhile, so a plugin's print() cannot corrupt the data."""
    global _data_stdout
    saved, outer = sys.stdout, _data_stdout
    _data_stdout = outer or saved
    sys.stdout = sys.stderr
    try:
        yield _data_stdout
    finally:
        sys.stdout, _data_stdout = saved, outer


def stdout_buffer():
    """Where data for ``-`` goes: the real stdout's binary buffer."""
    return (_data_stdout or sys.stdout).buffer


@contextlib.contextmanager
def open_output(path: Path):
    """A binary file for writing; ``-`` is stdout (flushed, not closed)."""
    if str(path) == "-":
        stream = stdout_buffer()
        yield stream
        stream.flush()
    else:
        with open(path, "xb") as f:
            yield f


READ_WHOLE = 16 * 2**20  # files up to this size are read into memory, bigger ones are mapped


class FileBytes:
    """The bytes of a file that a reader jumps around in (gdbm buckets, Berkeley DB pages).

    A file up to ``READ_WHOLE`` bytes is read into memory once: if another program truncates it
    afterwards, this copy stays whole (and the core's end-of-read check refuses the changed
    file). A bigger file is memory-mapped, so memory stays flat; a mapped file that shrinks
    would kill the process with SIGBUS on the next access past its new end, so readers call
    ``check()`` before each block they use (a bucket, a page), which turns a shrink seen there
    into a FormatError. Known limit: a truncation after a check, while the records of that
    block are read, is still a SIGBUS (closing that window would cost a system call per record).
    """

    def __init__(self, f, name: str):
        import mmap
        import os

        self.name = name
        self.size = os.fstat(f.fileno()).st_size
        self._fd = None
        self.mapped = False
        if self.size > READ_WHOLE:
            try:
                self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                self._fd = os.dup(f.fileno())
                self.mapped = True
                return
            except (OSError, ValueError):
                pass  # not mappable (a special file): read it
        self.data = f.read()
        self.size = len(self.data)

    def check(self) -> None:
        """Raise FormatError if the mapped file is now shorter than when it was opened."""
        if self._fd is not None:
            import os

            now = os.fstat(self._fd).st_size
            if now < self.size:
                from .errors import FormatError

                raise FormatError(f"{self.name}: changed while it was read (it shrank from {self.size:,} to "
                                  f"{now:,} bytes); nothing was written; convert it again when nothing writes it")

    def close(self) -> None:
        data, self.data = self.data, None
        if self.mapped and data is not None:
            data.close()
        if self._fd is not None:
            import os

            os.close(self._fd)
            self._fd = None
