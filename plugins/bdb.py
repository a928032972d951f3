"""Berkeley DB: recognising its files and db_dump texts, and the registration of both formats.

This is the light half of Berkeley DB support, imported whenever a file is detected: the
magic numbers, page types and meta-page layouts, ``sniff`` (also used by dbm.py for Debian's
``dbm.ndbm`` ``NAME.db``), ``dump_info`` for db_dump text, and the ``berkeleydb`` and
``db_dump`` formats. The page reader, ``BerkeleyDB``, is in ``bdb_file.py`` and the db_dump
text parser and writer in ``bdb_dump.py``, each imported only when such a file is read or
written; their names are still reachable as attributes of this module.

Facts from Oracle Berkeley DB's ``db_page.h``, ``hash.h`` and ``db_upgrade.h`` (see
/work/shared/FORMATS.md); no code was copied.
"""

from __future__ import annotations

import struct

from converter import Format, hookimpl

__all__ = ["sniff", "dump_info"]

HASH_MAGIC = 0x061561
BTREE_MAGIC = 0x053162
QUEUE_MAGIC = 0x042253
HEAP_MAGIC = 0x074582

# Page types (db_page.h).
P_INVALID, P_DUPLICATE, P_HASH_UNSORTED, P_IBTREE, P_IRECNO, P_LBTREE, P_LRECNO = range(7)
P_OVERFLOW, P_HASHMETA, P_BTREEMETA, P_QAMMETA, P_QAMDATA, P_LDUP, P_HASH = range(7, 14)

# Item types: hash pages (H_*) and btree pages (B_*); B_DELETE is a flag on btree items.
H_KEYDATA, H_DUPLICATE, H_OFFPAGE, H_OFFDUP, H_BLOB = 1, 2, 3, 4, 5
B_KEYDATA, B_DUPLICATE, B_OVERFLOW, B_BLOB = 1, 2, 3, 5
B_DELETE = 0x80

# Meta flags.
DBMETA_CHKSUM = 0x01
BTM_DUP, BTM_RECNO, BTM_SUBDB, BTM_DUPSORT, BTM_COMPRESS = 0x01, 0x02, 0x20, 0x40, 0x80
DB_HASH_DUP, DB_HASH_DUPSORT = 0x01, 0x04

# Which releases wrote which on-disk version (db_upgrade.c, FORMATS.md).
_HASH_RANGES = {4: "2.0", 5: "2.1-2.7", 6: "3.0", 7: "3.1-4.0", 8: "4.1-4.6.3",
                9: "4.6.18-6.0.20", 10: "6.0.30-18.1"}
_BTREE_RANGES = {6: "2.x", 7: "3.0", 8: "3.1-4.0", 9: "4.1-6.0.20", 10: "6.0.30-18.1"}
_QUEUE_RANGES = {1: "3.0", 2: "3.1", 3: "3.2-4.6", 4: "4.7-18.1"}
_HEAP_RANGES = {1: "5.2-18.1"}
_KINDS = {HASH_MAGIC: ("hash", _HASH_RANGES), BTREE_MAGIC: ("btree", _BTREE_RANGES),
          QUEUE_MAGIC: ("queue", _QUEUE_RANGES), HEAP_MAGIC: ("heap", _HEAP_RANGES)}

_PAGE_HEADER = 26          # SIZEOF_PAGE
_CHKSUM_HEADER = 32        # + PG_CHKSUM
_CRYPTO_HEADER = 64        # + PG_CRYPTO
_MAX_LEVELS = 255          # MAXBTREELEVEL

_HDR = struct.Struct("<IIIHHBB")  # pgno, prev, next, entries, hf_offset, level, type (at 8)


def _ceil_log2(n: int) -> int:
    """__db_log2: the smallest i with 2**i >= n."""
    return (n - 1).bit_length() if n > 1 else 0


def _read_meta_head(head: bytes):
    """(magic, version, struct byte-order prefix, page size) from a meta page, or None."""
    if len(head) < 28:
        return None
    for bo in ("<", ">"):
        magic, version, pagesize = struct.unpack_from(bo + "III", head, 12)
        if magic in _KINDS:
            return magic, version, bo, pagesize
    return None


def _meta_layout(kind: str, version: int):
    """Offsets of (flags, first hash/btree field) in the meta page of this version.

    Version 7 (hash) / 8 (btree) onwards use the 3.1 layout (DBMETA31/33); 3.0 had a
    56-byte generic header (DBMETA30) and 2.x hash/btree headers were laid out apart.
    """
    if kind == "hash":
        if version >= 7:
            return 48, 72
        if version == 6:
            return 32, 56
        return 56, 32           # HASHHDR (2.x): flags at 56, max_bucket at 32
    if version >= 8:
        return 48, 88           # root
    if version == 7:
        return 32, 72
    return 36, None             # BTMETA2X: the root is always page 1


def sniff(head: bytes) -> str | None:
    """Name the Berkeley DB flavour of a file from its first 512 bytes, or None.

    Examples: 'Berkeley DB hash v9 (4.6.18-6.0.20), little-endian, 4096-byte pages';
    queue, heap and recno files are named with ', unsupported' appended; the Berkeley DB
    1.85 hash format (old BSD / macOS ndbm) is 'Berkeley DB 1.85 hash'.
    """
    head = bytes(head[:512])
    if len(head) >= 8:
        magic0, version0 = struct.unpack_from(">II", head, 0)
        if magic0 == HASH_MAGIC and version0 in (1, 2):
            lorder = struct.unpack_from(">I", head, 8)[0] if len(head) >= 16 else 0
            bsize = struct.unpack_from(">I", head, 12)[0] if len(head) >= 16 else 0
            order = {1234: ", little-endian", 4321: ", big-endian"}.get(lorder, "")
            return "Berkeley DB 1.85 hash%s, %d-byte pages" % (order, bsize)
        for bo in ("<", ">"):
            m, v = struct.unpack_from(bo + "II", head, 0)
            if m == BTREE_MAGIC and v == 3:
                return "Berkeley DB 1.85 btree, unsupported"
    got = _read_meta_head(head)
    if got is None:
        return None
    magic, version, bo, pagesize = got
    kind, ranges = _KINDS[magic]
    pgno = struct.unpack_from(bo + "I", head, 8)[0]
    if version not in ranges or pgno != 0:
        return None
    if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
        # Hash 2.x wrote 256-byte pages. Otherwise the magic, the version and page 0 say Berkeley
        # DB and the page size is damaged: claimed, so that reading it fails saying so
        if not (kind == "hash" and version in (4, 5) and pagesize in (256,)):
            return f"Berkeley DB {kind} v{version}, damaged: page size {pagesize:,}"
    extra = []
    unsupported = kind in ("queue", "heap")
    if kind == "btree" and len(head) >= 52:
        flags_at = _meta_layout("btree", version)[0]
        flags = struct.unpack_from(bo + "I", head, flags_at)[0]
        if flags & BTM_RECNO:
            kind, unsupported = "recno", True
        if flags & BTM_SUBDB:
            extra.append("several databases")
    modern = {"hash": 8, "btree": 9, "recno": 9, "queue": 4, "heap": 1}[kind]
    if version >= modern:
        if head[24]:
            extra.append("encrypted")
        elif head[26] & DBMETA_CHKSUM:
            extra.append("checksummed")
    text = "Berkeley DB %s v%d (%s), %s-endian, %d-byte pages" % (
        kind, version, ranges.get(version, "?"), "little" if bo == "<" else "big", pagesize)
    if extra:
        text += ", " + ", ".join(extra)
    if unsupported:
        text += ", unsupported"
    return text



def dump_info(head: bytes) -> str | None:
    """Recognise the start of a db_dump text: 'db_dump text, format=print, type=hash', or None."""
    head = bytes(head)
    if not head.startswith(b"VERSION=") or head[8:9] not in (b"1", b"2", b"3"):
        return None
    fields = {}
    for line in head.split(b"\n")[1:]:
        if line == b"HEADER=END":
            break
        key, eq, value = line.partition(b"=")
        if eq:
            fields[key] = value.decode("latin-1")
    text = "db_dump text"
    for key in (b"format", b"type"):
        if key in fields:
            text += f", {key.decode()}={fields[key]}"
    return text



# -- registration -------------------------------------------------------------------------------

_FILE = "converter.plugins.bdb_file"
_DUMP = "converter.plugins.bdb_dump"


def _sniff_format(head, path):
    return sniff(head[:512])


def _sniff_dump(head, path):
    return dump_info(head)


@hookimpl
def register_formats(register):
    register(Format(
        name="berkeleydb",
        description="Berkeley DB hash/btree (Python 2 dbhash/bsddb, Debian dbm.ndbm NAME.db, 1.85 hash); read without libdb",
        aliases=("dbhash", "bsddb", "bsddb3", "bsddb185", "bdb"),
        extensions=(".bdb",),
        sniff=_sniff_format, reader=f"{_FILE}:read_format", writer=f"{_FILE}:write_format", kv=True,
        writer_needs=("bsddb3", "berkeleydb"),
        priority=10, describe=f"{_FILE}:describe",
    ))
    register(Format(
        name="db_dump",
        description="Berkeley DB db_dump text (bytevalue or print); written as text that db_load accepts",
        aliases=("db-dump", "bdb-dump"),
        extensions=(".dbdump",),
        sniff=_sniff_dump, reader=f"{_DUMP}:read_dump_format", writer=f"{_DUMP}:write_dump_format", kv=True,
        stream=True, priority=10,
    ))


def __getattr__(name):
    """``bdb.BerkeleyDB``, ``bdb.read_db_dump`` ...: the reader's names, imported on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    for module in (_FILE, _DUMP):
        found = importlib.import_module(module)
        if hasattr(found, name):
            return getattr(found, name)
    raise AttributeError(name)
