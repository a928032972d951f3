"""Which format is a path? Explicit choice first, then content (magic bytes, companion files),
then the file extension. An input that matches nothing is an error listing what was checked."""

from __future__ import annotations

import errno
import os
import re
import sys
from glob import escape as glob_escape
from pathlib import Path

from .errors import DetectionError, FormatError
from .fileio import check_regular

HEAD_SIZE = 4096


def read_head(path: Path) -> bytes:
    """The first bytes of ``path`` (stdin is peeked, not consumed); empty if it is not a file."""
    if str(path) == "-":
        return sys.stdin.buffer.peek(HEAD_SIZE)[:HEAD_SIZE]
    check_regular(path)
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_SIZE)
    except IsADirectoryError:
        return b""
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror}") from None


def _by_extension(path: Path, registry, role: str = "reader"):
    """The format whose extension ends the name: the longest, and on a tie a built-in format
    (a plugin takes over a built-in's extension only by replacing the format). Only formats
    with a ``role`` (reader or writer) count: a reader-only format claiming .kvt does not stand
    in the way of writing the .kvt of a format that writes it."""
    name = path.name.lower()
    best = None
    for fmt in registry:
        if getattr(fmt, role) is None:
            continue
        for ext in fmt.extensions:
            if name.endswith(ext.lower()) and (
                    best is None or (len(ext), fmt.builtin) > (len(best[1]), best[0].builtin)):
                best = (fmt, ext)
    return best


def sniff(path: Path, registry, head: bytes | None = None) -> list[tuple]:
    """Every format whose sniff accepts ``path``, best first, as (format, reason)."""
    if head is None:
        head = read_head(path)
    # A plugin's content sniff needs content: a missing or empty file (or stdin) is never a
    # plugin's; the base name of a multi-file store (no file, companions beside it) is sniffed with b"".
    plugins_too = bool(head) or (str(path) != "-" and not path.is_file() and _exists(path))
    found = []
    for fmt in registry:
        if fmt.sniff is None or fmt.reader is None or not (fmt.builtin or plugins_too):
            continue
        reason = fmt.sniff(head, path)  # a plugin's sniff is guarded (guard.py): it never raises
        if reason:
            found.append((fmt, reason))
    # The named file's own content wins over companion files: a.json beside a planted
    # a.json.db is JSON, whatever the Berkeley DB next to it says.
    own = str(path) != "-" and bool(head)
    # Then built-in formats before plugins' (a plugin's sniff cannot claim a built-in's files by
    # a high priority), then priority.
    found.sort(key=lambda fr: (not (own and _names_itself(fr[0], path)), not fr[0].builtin, -fr[0].priority))
    return found


def _exists(path: Path) -> bool:
    """``path`` is there, or is the base name of a multi-file store (``path.*`` beside it)."""
    return path.exists() or any(path.parent.glob(glob_escape(path.name) + ".*"))


def _names_itself(fmt, path: Path) -> bool:
    """Whether ``path`` is one of the files of the store ``fmt`` finds there."""
    try:
        parts = fmt.parts(path)
        return any(p == path or (p.exists() and p.samefile(path)) for p in parts)
    except (OSError, ValueError):
        return False
    except Exception:  # a plugin's files() must not break detection
        return False


def _check_exists(path: Path, formats) -> None:
    """A name that is no file, no base name of a multi-file store (``store`` for store.dat and
    store.dir) and no member of one whose other files exist, is "no such file" whatever its
    extension says; a symbolic link that leads nowhere says so."""
    if str(path) == "-" or _exists(path):
        return
    for fmt in formats:
        try:
            if any(p != path and os.path.lexists(p) for p in fmt.parts(path)):
                return
        except Exception:  # a plugin's files() must not break detection
            pass
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DetectionError(f"{path}: symbolic link loop") from None
            if exc.errno == errno.ENOENT:
                raise DetectionError(f"{path}: broken symbolic link (to {os.readlink(path)!r}, which does not exist)") from None
    if os.path.lexists(path):
        return  # there but not reachable (a directory without search permission ...): the reader says why
    raise DetectionError(f"{path}: no such file")


def detect_input(path: Path, registry, explicit: str | None = None, flag: str | None = "--from"):
    """(format, reason) for an input path.

    ``flag``: the option that names the format where the error is seen (``--from`` for
    ``convert``, ``--format-a`` for ``verify``); None where there is none (``identify``).
    """
    check_regular(path)
    advice = f"; give one with {flag}" if flag else ""
    if explicit:
        fmt = registry.format(explicit)
        _check_exists(path, [fmt])
        return fmt, f"given with {flag or '--from'}"
    by_ext = _by_extension(path, registry)
    _check_exists(path, [by_ext[0]] if by_ext else [])
    head = read_head(path)
    found = sniff(path, registry, head)  # no plugin's sniff sees a missing file (a built-in's may find
    if found:                            # the store it names: dbm.ndbm's w.pag made as w.db)
        return found[0]
    if by_ext and by_ext[0].reader is not None:
        return by_ext[0], f"extension {by_ext[1]}"
    if path.is_dir():
        raise DetectionError(f"{path}: is a directory; give a file (a multi-file store by one of its files)")
    if not head and path.is_file():
        raise DetectionError(f"{path}: empty file, and its extension names no format{advice}")
    checked = ", ".join(f.name for f in registry if f.sniff and f.reader)
    lone = lone_companion(path, head)
    if lone and lone[0]:
        raise DetectionError(f"{path}: {lone[1]}")
    hint = lone[1] if lone else looks_like(head)
    raise DetectionError(
        f"{path}: cannot tell the format: {hint + ', ' if hint else ''}content matches none of [{checked}] "
        f"and the extension is not known{advice}"
    )


_DUMB_INDEX_LINE = re.compile(rb"""\A(?:'[^'\n]*'|"[^"\n]*"), \(\d+, \d+\)\r?\n""")


def lone_companion(path: Path, head: bytes):
    """(sure, why) for one file of a two-file store whose other file is missing, or None.

    ``sure``: the content says so (a dbm.dumb index, NAME.dir, without NAME.dat: its records
    cannot be read); otherwise only the name does (NAME.dat without NAME.dir)."""
    suffix, base = path.suffix.lower(), path.with_suffix("")
    if suffix == ".dir" and _DUMB_INDEX_LINE.match(head) and not Path(f"{base}.dat").exists():
        return True, (f"the index of a dbm.dumb store whose values file, {base.name}.dat, is missing: "
                      f"its records cannot be read without it")
    if suffix == ".dat" and not Path(f"{base}.dir").exists() and not Path(f"{base}.bak").exists():
        return False, f"if it is a dbm.dumb store's values file, its index {base.name}.dir is missing"
    return None


# What a file is when it is none of the formats: enough to say it in words.
_MAGIC = (
    (b"SQLite format 3\x00", "a SQLite database"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a zip archive"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"(\xb5/\xfd", "zstd-compressed data"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xa1\x02\x8b\x0dskiplist file", "a Cyrus skiplist database"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)
_MARSHAL_TYPES = frozenset(b"0NFTSE.ifgyxcsuatZz()[]{}<>rA")


def looks_like(head: bytes) -> str:
    """'it looks like a zip archive' for a file that is none of the formats, or '' if unknown."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"it looks like {what}"
    if len(head) >= 2 and head[0] & 0x7F in b"{[()" and head[1] & 0x7F in _MARSHAL_TYPES and head[1] > 0x7F:
        return "it looks like Python marshal data"
    if head[:1] == b"\x80" and 1 <= head[1:2][0] <= 5 if len(head) > 1 else False:
        return "it looks like a pickle"
    if not head:
        return ""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the window
            return "it is binary data"
    return "it is text"


def detect_output(path: Path, registry, explicit: str | None = None):
    """(format, reason) for an output path: explicit choice, else the extension."""
    if explicit:
        return registry.format(explicit), "given with --to"
    by_ext = _by_extension(path, registry, "writer")
    if by_ext:
        return by_ext[0], f"extension {by_ext[1]}"
    writable = ", ".join(f.name for f in registry if f.writer)
    raise DetectionError(f"{path}: cannot tell the output format from its name; give one of [{writable}] with --to")
