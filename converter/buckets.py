"""Fixed-width digests in 256 buckets, in memory up to a limit, then in files: bounded memory.

``verify`` (two 16-byte digests per record) and the repeated-key check (a 64-bit fingerprint per
key, ``converter/keyset.py``) both need to hold something for every record of a store of any
size and then look at it a bucket at a time. They share this: callers append to ``parts[i]``
(a ``bytearray``, or an ``array`` of ``typecode``) and call ``grew(nbytes)``; past ``limit``
bytes every part is appended to its own file in a scratch directory (``scratch``, or a temporary
directory made on the first spill and removed by ``close``). ``bucket(i)`` gives a bucket's
bytes back, spilled ones first, in the order they were added.
"""

from __future__ import annotations

import tempfile
from array import array
from pathlib import Path

COUNT = 256


class Buckets:
    def __init__(self, limit: int, *, scratch: Path | None = None, prefix: str = "", typecode: str | None = None):
        self.limit = limit
        self.typecode = typecode
        self.parts = [array(typecode) if typecode else bytearray() for _ in range(COUNT)]
        self.held = 0
        self.spilled = False
        self._scratch, self._prefix, self._tmp = scratch, prefix, None

    def add(self, i: int, data: bytes) -> None:
        self.parts[i] += data
        self.grew(len(data))

    def grew(self, nbytes: int) -> None:
        self.held += nbytes
        if self.held >= self.limit:
            self.spill()

    def _file(self, i: int) -> Path:
        if self._scratch is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="convert-buckets-")
            self._scratch = Path(self._tmp.name)
        return self._scratch / f"{self._prefix}{i:03d}"

    def spill(self) -> None:
        for i, part in enumerate(self.parts):
            if part:
                with open(self._file(i), "ab") as f:
                    f.write(part)
                del part[:]
        self.held = 0
        self.spilled = True

    def bucket(self, i: int) -> bytes:
        """Bucket ``i``'s bytes in the order they came; the bucket is emptied."""
        part = self.parts[i].tobytes() if self.typecode else bytes(self.parts[i])
        self.parts[i] = array(self.typecode) if self.typecode else bytearray()
        if self.spilled:
            name = self._file(i)
            if name.exists():
                part = name.read_bytes() + part
                name.unlink()
        return part

    def close(self) -> None:
        self.parts = [array(self.typecode) if self.typecode else bytearray() for _ in range(COUNT)]
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._scratch = None
