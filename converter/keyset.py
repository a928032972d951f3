"""The keys a conversion has seen, as 64-bit fingerprints: how the core finds repeated keys.

Every record that reaches an output that cannot hold a key twice passes through one
``KeySet``, whatever its source claims about uniqueness. Two keys are the same key when the
output would merge them:

- after a codec, in a key/value store, the stored bytes (exact);
- otherwise Python's equality, as a dict (pickle, the JSON readers, SQLite's key column) would
  apply it: ``1``, ``1.0`` and ``True`` are one key; and, unlike Python, every NaN is the
  same key (their written forms are identical).

A fingerprint is ``hash()`` of the key's text or bytes with a type prefix: SipHash with this
process's random key, so crafted keys cannot make the set slow (Python's int hashes are not
randomised: 120,000 ints with one hash take minutes in a plain set). Two different keys share a
fingerprint with probability 2**-64 per pair; the effect is a repeat counted that was not one,
never a record dropped (the outputs' own rules decide what is kept).

Memory: a set of fingerprints, about 60 bytes per key (not the keys: 60 MB for a million keys
whatever their size), up to ``MEMORY_KEYS`` keys; past that they move to a SQLite table in a
temporary directory (about 20 bytes per key on disk, slower: some microseconds per key), so
memory stays bounded for any number of keys.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile

MEMORY_KEYS = 2_000_000
_I64 = 2**63
_TAGGED_I64 = struct.Struct("<Bq").pack
_STR = {str}
_BYTES = {bytes}


def fingerprint(key) -> int:
    """The 64-bit fingerprint of ``key`` under the rule above."""
    t = type(key)
    if t is str:
        return hash(key)
    if t is bytes:
        return hash(b"b" + key)
    if t is bool or t is int:
        if -_I64 <= key < _I64:
            return hash(_TAGGED_I64(105, key))  # b"i" + 8 bytes
        key = int(key)
        return hash(b"I" + key.to_bytes((key.bit_length() + 8) // 8, "little", signed=True))
    if t is float:
        if math.isnan(key):
            return hash(b"nan")
        if key.is_integer():
            return fingerprint(int(key))
        return hash(b"f" + struct.pack("<d", key))
    if key is None:
        return hash(b"None")
    from . import budget
    from .verify import canonical

    budget.check_hashable(key, "a key")  # depth and shared-tuple work, before anything walks it

    return hash(b"c" + canonical(key).encode("utf-8", "surrogatepass"))


def bytes_fingerprint(key) -> int:
    return hash(bytes(key))  # a store's keys are all bytes: no type prefix needed


class KeySet:
    """``add_batch(keys)``: which of these keys came before (in this batch or an earlier one).

    Batches are checked with set operations in C (no Python-level work per key unless the
    batch holds a repeat, which is rare); past ``memory_keys`` keys the fingerprints live in a
    SQLite table and each batch costs two statements.
    """

    def __init__(self, *, exact_bytes: bool = False, memory_keys: int | None = None):
        self.fingerprint = bytes_fingerprint if exact_bytes else fingerprint
        self.memory: set[int] | None = set()
        self.memory_keys = memory_keys or MEMORY_KEYS
        self._db = None
        self._tmp = None

    def _fingerprints(self, keys: list) -> list[int]:
        # one type throughout (all str, or all bytes in a store): its own keyed hash, in C
        if set(map(type, keys)) == (_BYTES if self.fingerprint is bytes_fingerprint else _STR):
            return list(map(hash, keys))
        return list(map(self.fingerprint, keys))

    def add_batch(self, keys: list) -> list[int]:
        """Add ``keys``; return the positions (in ``keys``) of those that repeat an earlier key."""
        fps = self._fingerprints(keys)
        batch = set(fps)
        memory = self.memory
        if memory is not None:
            if len(batch) == len(fps) and memory.isdisjoint(batch):
                memory |= batch
                if len(memory) > self.memory_keys:
                    self._spill()
                return []
            repeats = []
            for i, h in enumerate(fps):
                if h in memory:
                    repeats.append(i)
                else:
                    memory.add(h)
            if len(memory) > self.memory_keys:
                self._spill()
            return repeats
        present = set()
        values = list(batch)
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            present.update(h for (h,) in self._db.execute(
                f"SELECT h FROM k WHERE h IN ({','.join('?' * len(chunk))})", chunk))
        self._db.executemany("INSERT OR IGNORE INTO k VALUES (?)", ((h,) for h in values))
        if len(batch) == len(fps) and not present:
            return []
        repeats, seen = [], set()
        for i, h in enumerate(fps):
            if h in present or h in seen:
                repeats.append(i)
            seen.add(h)
        return repeats

    def _spill(self) -> None:
        import sqlite3

        self._tmp = tempfile.TemporaryDirectory(prefix="convert-keys-")
        self._db = sqlite3.connect(os.path.join(self._tmp.name, "keys.db"), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE k (h INTEGER PRIMARY KEY)")
        self._db.execute("BEGIN")  # one transaction for the whole run: the table is scratch
        self._db.executemany("INSERT INTO k VALUES (?)", ((h,) for h in sorted(self.memory)))
        self.memory = None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.memory = set()
