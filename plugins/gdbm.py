"""GNU dbm (gdbm): recognising its files and dumps, and the gdbm-dump format.

This is the light half of gdbm support, imported whenever a file is detected: the magic
numbers and header layouts, ``sniff`` for gdbm files (used by dbm.py's ``dbm.gnu`` and
``dbm.ndbm`` formats), ``dump_info`` for dumps, ``ndbm_pag_path`` and the registration of
the ``gdbm-dump`` format. The reader itself, ``GdbmFile``, and the dump parsers and writers
are in ``gdbm_file.py``, imported only when a gdbm file or dump is read or written; their
names are still reachable as attributes of this module.

The layout facts come from GNU gdbm's ``gdbmdefs.h`` / ``gdbmopen.c`` (see
/work/shared/FORMATS.md); no code was copied.
"""

from __future__ import annotations  # 'str | None' annotations on Python 3.10

import os
import struct

from converter import Format, hookimpl

__all__ = ["GDBM_MAGICS", "sniff", "dump_info", "ndbm_pag_path"]

_OMAGIC = 0x13579ACE
_MAGIC32 = 0x13579ACD
_MAGIC64 = 0x13579ACF
_NUMSYNC32 = 0x13579AD0
_NUMSYNC64 = 0x13579AD1

#: Header magic (as an integer in the file's own byte order) -> description.
#: The same values read byte-swapped mean a file written on the other endianness.
GDBM_MAGICS: dict[int, str] = {
    _OMAGIC: "gdbm (original magic)",
    _MAGIC32: "gdbm, 32-bit offsets",
    _MAGIC64: "gdbm, 64-bit offsets",
    _NUMSYNC32: "gdbm numsync (1.21+), 32-bit offsets",
    _NUMSYNC64: "gdbm numsync (1.21+), 64-bit offsets",
}

_HASH_BITS = 31  # gdbm hash values are 31 bits; the directory index is the top dir_bits
_MAX_BLOCK = 1 << 30  # far above anything gdbm creates; a bigger value is garbage


class _Layout:
    """Struct offsets for one (offset size, alignment of offsets) combination.

    gdbm writes its C structs raw, so the layout follows the writer's ABI:
    4-byte offsets (32-bit off_t), 8-byte offsets aligned to 8 (x86-64 and most
    64-bit ABIs), and 8-byte offsets aligned to 4 (i386 with large-file support).
    """

    def __init__(self, off_size: int, align: int):
        self.off_size = off_size
        self.align = align
        o = "q" if off_size == 8 else "i"
        self.off_code = o
        # header: int magic, block_size; off_t dir; int dir_size, dir_bits,
        # bucket_size, bucket_elems; off_t next_block.  dir sits at 8 either way.
        self.header_fmt = "ii" + o + "iiii" + o
        self.header_len = 8 + off_size + 16 + off_size
        # avail_elem {int av_size; off_t av_adr}
        self.avail_elem = _round(4, align) + off_size
        # hash_bucket {int av_count; avail_elem[6]; int bucket_bits, count; elements}
        self.bucket_bits_at = _round(4, align) + 6 * self.avail_elem
        self.table_at = _round(self.bucket_bits_at + 8, align)
        # bucket_element {int hash; char key_start[4]; off_t ptr; int key_size, data_size}
        self.elem_fmt = "i4x" + o + "ii"
        self.elem_size = 8 + off_size + 8
        # sizeof(hash_bucket) includes one element (the C "array of 1" idiom)
        self.bucket_struct = self.table_at + self.elem_size

    def bucket_elems(self, bucket_size: int) -> int:
        """The element count gdbm derives from the bucket size (bucket_element_count)."""
        return (bucket_size - self.bucket_struct) // self.elem_size + 1


def _round(n: int, align: int) -> int:
    return (n + align - 1) // align * align


_L32 = _Layout(4, 4)
_L64 = _Layout(8, 8)
_L64_A4 = _Layout(8, 4)
_CANDIDATES = {
    _MAGIC32: (_L32,),
    _NUMSYNC32: (_L32,),
    _MAGIC64: (_L64, _L64_A4),
    _NUMSYNC64: (_L64, _L64_A4),
    # The original magic carries no offset size: the header arithmetic decides.
    _OMAGIC: (_L64, _L32, _L64_A4),
}


def _magic_of(head: bytes) -> tuple[int, str] | None:
    """(magic, byte order) if the first 4 bytes are a gdbm magic in either order."""
    if len(head) < 4:
        return None
    le = int.from_bytes(head[:4], "little")
    if le in GDBM_MAGICS:
        return le, "little"
    be = int.from_bytes(head[:4], "big")
    if be in GDBM_MAGICS:
        return be, "big"
    return None


def _check_header(fields: tuple, layout: _Layout, file_size: int | None) -> str | None:
    """Return None if the header fields are consistent with LAYOUT, else why not."""
    _magic, block_size, dir_off, dir_size, dir_bits, bucket_size, bucket_elems, _next = fields
    if not layout.header_len < block_size <= _MAX_BLOCK:
        return f"block size {block_size} out of range"
    if not 0 <= dir_bits <= _HASH_BITS or dir_size != layout.off_size << dir_bits:
        return f"directory size {dir_size} does not match {dir_bits} directory bits"
    if bucket_size <= layout.bucket_struct or bucket_size > _MAX_BLOCK:
        return f"bucket size {bucket_size} out of range"
    if bucket_elems != layout.bucket_elems(bucket_size):
        return f"bucket_elems {bucket_elems} does not match bucket size {bucket_size}"
    if dir_off < block_size:
        return f"directory offset {dir_off} inside the header block"
    if file_size is not None:
        if block_size > file_size:
            return f"block size {block_size} larger than the file ({file_size} bytes)"
        if dir_off + dir_size > file_size:
            return f"directory [{dir_off}, {dir_off + dir_size}) past the end of the file ({file_size} bytes)"
        if bucket_size > file_size:
            return f"bucket size {bucket_size} larger than the file"
    return None


def _pick_layout(head, magic: int, endian: str, file_size: int | None):
    """Choose the layout whose header arithmetic holds; return (layout, fields) or (None, reason)."""
    first_reason = None
    for layout in _CANDIDATES[magic]:
        st = struct.Struct(endian + layout.header_fmt)
        if len(head) < st.size:
            reason = f"header needs {st.size} bytes, file has {len(head)}"
        else:
            fields = st.unpack_from(head, 0)
            reason = _check_header(fields, layout, file_size)
            if reason is None:
                return layout, fields
        first_reason = first_reason or reason
    return None, first_reason


def sniff(head: bytes) -> str | None:
    """Given at least the first 4 bytes of a file: None if it is not gdbm, else a description.

    e.g. ``'gdbm, 64-bit offsets, little-endian'`` or
    ``'gdbm numsync (1.21+), 32-bit offsets, big-endian'``.  For the original
    magic the offset size is inferred from the header when ``head`` holds it.
    """
    found = _magic_of(bytes(head[:4]))
    if found is None:
        return None
    magic, byteorder = found
    desc = GDBM_MAGICS[magic]
    if magic == _OMAGIC:
        endian = "<" if byteorder == "little" else ">"
        layout, _ = _pick_layout(bytes(head[:64]), magic, endian, None)
        if layout is not None:
            desc += f", {layout.off_size * 8}-bit offsets"
    return f"{desc}, {byteorder}-endian"



# -- dumps: recognised here, read and written in gdbm_file.py --------------------

_BIN_PREAMBLE = b"!\r\n! GDBM FLAT FILE DUMP -- THIS IS NOT A TEXT FILE\r\n! "


def dump_info(head: bytes) -> str | None:
    """Sniff a gdbm dump from its first bytes: 'gdbm ASCII dump v1.1', 'gdbm binary dump' or None."""
    head = bytes(head)
    if head.startswith(_BIN_PREAMBLE[:24]):
        return "gdbm binary dump"
    if head.startswith(b"# GDBM dump file") or head.startswith(b"#:version="):
        i = head.find(b"#:version=")
        if i >= 0:
            ver = head[i + 10:].split(b"\n", 1)[0].strip()
            if ver and len(ver) < 16 and all(48 <= c <= 57 or c == 46 for c in ver):
                return f"gdbm ASCII dump v{ver.decode()}"
        return "gdbm ASCII dump"
    return None



def ndbm_pag_path(path) -> str | None:
    """For gdbm_compat's ndbm (NAME.dir + NAME.pag): return NAME.pag if it is a gdbm file, else None.

    ``path`` may be NAME, NAME.dir or NAME.pag.  NAME.dir must be empty, the
    16-byte 'GDBM'+version stamp gdbm >= 1.9 writes, or (gdbm 1.8) a hard link
    to NAME.pag.
    """
    p = os.fspath(path)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    base = p[:-4] if p.endswith((".dir", ".pag")) else p
    pag, dirf = base + ".pag", base + ".dir"
    try:
        if not (os.path.isfile(pag) and os.path.isfile(dirf)):
            return None
        with open(pag, "rb") as f:
            if _magic_of(f.read(4)) is None:
                return None
        dsize = os.path.getsize(dirf)
        if dsize == 0 or os.path.samefile(pag, dirf):
            return pag
        if dsize == 16:
            with open(dirf, "rb") as f:
                if f.read(4) == b"GDBM":
                    return pag
    except OSError:
        return None
    return None



# -- registration: gdbm's dump format (dbm.gnu and dbm.ndbm themselves are in dbm.py) -----------

_FILE = "converter.plugins.gdbm_file"


def _sniff_dump(head, path):
    return dump_info(head)


@hookimpl
def register_formats(register):
    register(Format(
        name="gdbm-dump",
        description="gdbm_dump output (ASCII, or binary when read); written as ASCII that gdbm_load accepts",
        aliases=("gdbm_dump",),
        extensions=(".gdbmdump",),
        sniff=_sniff_dump, reader=f"{_FILE}:read_dump_format", writer=f"{_FILE}:write_dump_format", kv=True,
        stream=True, priority=10,
    ))


def __getattr__(name):
    """``gdbm.GdbmFile``, ``gdbm.read_dump`` ...: the reader's names, imported on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(_FILE), name)
