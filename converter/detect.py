"""Which format is a path? Explicit choice first, then content (magic bytes, companion files),
then the file extension. An input that matches nothing is an error listing what was checked."""

from __future__ import annotations

import sys
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


def _by_extension(path: Path, registry):
    name = path.name.lower()
    best = None
    for fmt in registry:
        for ext in fmt.extensions:
            if name.endswith(ext.lower()) and (best is None or len(ext) > len(best[1])):
                best = (fmt, ext)
    return best


def sniff(path: Path, registry, head: bytes | None = None) -> list[tuple]:
    """Every format whose sniff accepts ``path``, best first, as (format, reason)."""
    if head is None:
        head = read_head(path)
    found = []
    for fmt in registry:
        if fmt.sniff is None or fmt.reader is None:
            continue
        try:
            reason = fmt.sniff(head, path)
        except Exception:  # a plugin's sniff must not break detection of the others
            reason = None
        if reason:
            found.append((fmt, reason))
    found.sort(key=lambda fr: -fr[0].priority)
    return found


def detect_input(path: Path, registry, explicit: str | None = None):
    """(format, reason) for an input path."""
    check_regular(path)
    if explicit:
        return registry.format(explicit), "given with --from"
    head = read_head(path)
    found = sniff(path, registry, head)
    if found:
        return found[0]
    by_ext = _by_extension(path, registry)
    if by_ext and by_ext[0].reader is not None:
        return by_ext[0], f"extension {by_ext[1]}"
    if not path.exists() and str(path) != "-" and not any(path.parent.glob(path.name + ".*")):
        raise DetectionError(f"{path}: no such file")
    if not head and path.is_file():
        raise DetectionError(f"{path}: empty file, and its extension names no format; give one with --from")
    checked = ", ".join(f.name for f in registry if f.sniff and f.reader)
    raise DetectionError(
        f"{path}: cannot tell the format: content matches none of [{checked}] and the extension is not known; "
        f"give one with --from"
    )


def detect_output(path: Path, registry, explicit: str | None = None):
    """(format, reason) for an output path: explicit choice, else the extension."""
    if explicit:
        return registry.format(explicit), "given with --to"
    by_ext = _by_extension(path, registry)
    if by_ext and by_ext[0].writer is not None:
        return by_ext[0], f"extension {by_ext[1]}"
    writable = ", ".join(f.name for f in registry if f.writer)
    raise DetectionError(f"{path}: cannot tell the output format from its name; give one of [{writable}] with --to")
