"""The command line's error policy, in one place: which failure gets which message and exit status.

The library raises (``converter.errors``, or the ``OSError`` the system gave); ``cli.py``
asks ``answer(exc)`` what to print and how to exit. ``EXIT_STATUS`` is the README's exit-status
table (``tests/test_errorpolicy.py`` checks the two agree, and runs a case of each row).
"""

from __future__ import annotations

import errno
import os

OK, FAILED, USAGE, INTERRUPTED, BROKEN_PIPE = 0, 1, 2, 130, 141

EXIT_STATUS = (
    (OK, "done (for `verify`: the stores hold the same records)"),
    (FAILED, "bad, unreadable or missing input; an output that exists, is the input or cannot be "
             "written (no space, permission, name too long); a refused pickle global; a value the "
             "output cannot hold; `verify` found differences"),
    (USAGE, "a usage error: unknown command, format or codec, a bad option value"),
    (INTERRUPTED, "interrupted (Ctrl-C): nothing half-written is left"),
    (BROKEN_PIPE, "the reader of stdout went away (`convert ... - | head`): quietly, as a program "
                  "killed by SIGPIPE would"),
)

# errno -> what ran out or went wrong, in words (strerror is used for the rest)
_WORDS = {
    errno.ENOENT: "no such file or directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (over the file-size limit)",
    errno.ENAMETOOLONG: "file name too long",
    errno.EROFS: "read-only file system",
    errno.EMFILE: "too many open files",
    errno.EDQUOT: "disk quota exceeded",
    errno.EIO: "input/output error",
}


def _name(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    text = str(value)
    # a file name never puts terminal control characters on the user's screen
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def answer(exc: BaseException) -> tuple[str | None, int] | None:
    """(message or None for a quiet exit, exit status) for a failure the policy knows, else None."""
    if isinstance(exc, BrokenPipeError):
        return None, BROKEN_PIPE
    if isinstance(exc, RecursionError):
        return "a value is nested too deeply for this conversion", FAILED
    if isinstance(exc, MemoryError):
        return "out of memory (the input needs more than this machine gives the process)", FAILED
    if isinstance(exc, OSError):
        words = _WORDS.get(exc.errno) or exc.strerror or type(exc).__name__
        names = [n for n in (_name(exc.filename), _name(exc.filename2)) if n]
        where = " -> ".join(names)
        return f"{where}: {words}" if where else words, FAILED
    return None
