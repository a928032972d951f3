"""Berkeley DB's db_dump text format: the text ``db_dump`` prints and ``db_load`` reads, in
``format=bytevalue`` (hex) or ``format=print`` (escaped printable bytes), one block per named
database (facts from Berkeley DB's dumpload_format.html and db_pr.c; recognised and
registered in bdb.py). Read as a stream, line by line: no line or value is held beyond the
one being read, and every header field, escape and hex digit is checked.
"""

from __future__ import annotations

import io
import os
from typing import Iterable, Iterator

from converter.errors import ChoiceNeededError, FormatError

__all__ = ["read_db_dump", "dump_databases", "write_db_dump"]


# db_dump text format (dumpload_format.html; db_pr.c __db_prdbt / __db_prheader)

_HEXVAL = {c: i for i, c in enumerate(b"0123456789abcdef")}
_HEXVAL.update({c: i + 10 for i, c in enumerate(b"ABCDEF")})


def _open_text(file, mode):
    """(binary stream, close_after) for a path or an already open stream."""
    if isinstance(file, (str, bytes, os.PathLike)):
        return open(file, mode), True
    return file, False


def _unprint(line: bytes, what: str) -> bytes:
    """Undo print-mode escaping: '\\\\' is a backslash, '\\xx' a hex byte."""
    if b"\\" not in line:
        return line
    out = bytearray()
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c != 0x5C:
            out.append(c)
            i += 1
        elif i + 1 < n and line[i + 1] == 0x5C:
            out.append(0x5C)
            i += 2
        else:
            try:
                out.append(_HEXVAL[line[i + 1]] << 4 | _HEXVAL[line[i + 2]])
            except (KeyError, IndexError):
                raise FormatError(f"{what}: bad escape in print-format line") from None
            i += 3
    return bytes(out)


def _dump_blocks(stream, label: str):
    """Yield (header dict, line iterator) for each database in a dump.

    The line iterator must be consumed (or abandoned) before the next block is asked for.
    """
    lineno = 0

    def lines():
        nonlocal lineno
        for raw in stream:
            lineno += 1
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            yield raw

    it = lines()
    while True:
        header = {}
        for line in it:
            if not header and not line:
                continue
            if line == b"HEADER=END":
                break
            key, eq, value = line.partition(b"=")
            if not eq:
                raise FormatError(f"{label} line {lineno}: expected a header line (name=value)")
            if not header and key != b"VERSION":
                raise FormatError(f"{label} line {lineno}: a db_dump block starts with VERSION=")
            header[key.decode("ascii", "replace")] = value
        else:
            if header:
                raise FormatError(f"{label}: header not closed by HEADER=END")
            return
        version = header.get("VERSION")
        if version not in (b"1", b"2", b"3"):
            raise FormatError(f"{label}: unsupported db_dump VERSION={version!r}")
        fmt = header.get("format", b"bytevalue")
        if fmt not in (b"bytevalue", b"print"):
            raise FormatError(f"{label}: unknown db_dump format={fmt!r}")
        info = {k: v.decode("latin-1") for k, v in header.items() if k != "database"}
        if "database" in header:
            info["database"] = _unprint(header["database"], label).decode("utf-8", "surrogateescape")
        info["line"] = lineno

        def data(fmt=fmt, version=version):
            for line in it:
                if line == b"DATA=END":
                    return
                if not line.startswith(b" "):
                    raise FormatError(f"{label} line {lineno}: data lines start with a space")
                body = line[1:]
                if fmt == b"print":
                    yield _unprint(body, f"{label} line {lineno}")
                else:
                    try:
                        yield bytes.fromhex(body.decode("ascii"))
                    except (ValueError, UnicodeDecodeError):
                        raise FormatError(f"{label} line {lineno}: bad hex data") from None
            if version == b"3":
                raise FormatError(f"{label}: truncated, no DATA=END after line {lineno}")

        yield info, data()


def _label(file, name):
    if name:
        return name
    if isinstance(file, (str, bytes, os.PathLike)):
        return os.fsdecode(file)
    return getattr(file, "name", "<db_dump text>")


def read_db_dump(file, *, name: str = "", database=None) -> Iterator[tuple[bytes, bytes]]:
    """Stream (key, value) pairs from db_dump text (``format=bytevalue`` or ``print``).

    ``file`` is a path or a binary stream. A dump may hold several databases (one block per
    named database, each ending in ``DATA=END``): ``database=NAME`` reads that block;
    ``database=None`` reads the first block and raises FormatError if another block follows
    (so records are never silently dropped; list the names with ``dump_databases()``).
    For recno/queue/heap dumps without ``keys=1`` the key is the 1-based record number in
    ASCII, as db_load would number them.
    """
    label = _label(file, name)
    stream, close = _open_text(file, "rb")
    try:
        found = False
        for info, data in _dump_blocks(stream, label):
            if database is not None:
                if info.get("database") != database:
                    for _ in data:
                        pass
                    continue
            elif found:
                raise ChoiceNeededError(f"{label} line {info['line']}: the dump holds several databases; pick one "
                                        "with database= (--database NAME on the command line)", "--database", [])
            found = True
            keyed = info.get("type", "btree") in ("btree", "hash") or info.get("keys") == "1"
            if keyed:
                for key in data:
                    for value in data:
                        yield key, value
                        break
                    else:
                        raise FormatError(f"{label}: a key line has no value line")
            else:
                for n, value in enumerate(data, 1):
                    yield b"%d" % n, value
            if database is not None:
                return
        if database is not None and not found:
            raise FormatError(f"{label}: no database named {database!r} in the dump")
        if not found:
            raise FormatError(f"{label}: no db_dump header (VERSION=...)")
    finally:
        if close:
            stream.close()


def dump_databases(file) -> list[str]:
    """Names given by ``database=`` in a db_dump text, in order ([] if none are named)."""
    stream, close = _open_text(file, "rb")
    try:
        names = []
        for info, data in _dump_blocks(stream, _label(file, "")):
            if "database" in info:
                names.append(info["database"])
            for _ in data:
                pass
        return names
    finally:
        if close:
            stream.close()



_PRINTABLE = bytes(range(0x20, 0x7F))


def _escape_print(data: bytes) -> bytes:
    """Print-mode escaping as db_dump does it: printable ASCII kept, backslash doubled,
    every other byte as backslash + two lowercase hex digits."""
    if not data.translate(None, _PRINTABLE) and b"\\" not in data:
        return data
    out = []
    for c in data:
        if c == 0x5C:
            out.append(b"\\\\")
        elif 0x20 <= c < 0x7F:
            out.append(bytes((c,)))
        else:
            out.append(b"\\%02x" % c)
    return b"".join(out)


def write_db_dump(file, items: Iterable[tuple[bytes, bytes]], *, type: str = "hash",
                  format: str = "bytevalue", database=None, duplicates: bool = False) -> int:
    """Write db_dump text that ``db_load`` accepts; return the number of records written.

    ``file`` is a path or a stream (binary, or text such as sys.stdout). ``type`` is 'hash' or
    'btree'; ``format`` is 'bytevalue' (hex) or 'print'; ``database`` names the database;
    ``duplicates=True`` writes ``duplicates=1`` so db_load keeps repeated keys instead of
    letting the last value win.
    """
    if type not in ("hash", "btree"):
        raise ValueError(f"type must be 'hash' or 'btree', not {type!r}")
    if format not in ("bytevalue", "print"):
        raise ValueError(f"format must be 'bytevalue' or 'print', not {format!r}")
    enc = _escape_print if format == "print" else bytes.hex
    head = [b"VERSION=3", b"format=" + format.encode()]
    if database is not None:
        name = database.encode("utf-8", "surrogateescape") if isinstance(database, str) else bytes(database)
        head.append(b"database=" + _escape_print(name))
    head.append(b"type=" + type.encode())
    if duplicates:
        head.append(b"duplicates=1")
    head.append(b"HEADER=END\n")
    stream, close = _open_text(file, "wb")
    text = isinstance(stream, io.TextIOBase)
    write = (lambda b: stream.write(b.decode("ascii"))) if text else stream.write
    count = 0
    try:
        write(b"\n".join(head))
        buf = []
        for key, value in items:
            if not isinstance(key, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
                raise TypeError(f"record {count}: keys and values must be bytes")
            k, v = enc(bytes(key)), enc(bytes(value))
            if isinstance(k, str):
                k, v = k.encode("ascii"), v.encode("ascii")
            buf.append(b" %s\n %s\n" % (k, v))
            count += 1
            if len(buf) >= 1024:
                write(b"".join(buf))
                buf.clear()
        buf.append(b"DATA=END\n")
        write(b"".join(buf))
    finally:
        if close:
            stream.close()
    return count


# -- the db_dump format's reader and writer (registered in bdb.py) ---------------------------

def read_dump_format(path, options):
    from converter.fileio import open_input

    with open_input(path) as f:
        yield from read_db_dump(f, name=str(path), database=options.database)


def write_dump_format(path, records, options):
    from converter.fileio import open_output

    with open_output(path) as f:
        write_db_dump(f, records, type="hash", format="bytevalue")
