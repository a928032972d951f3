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

Memory is bounded whatever the number or size of the keys: a set of the first ``MEMORY_KEYS``
fingerprints (about 5 MB), then 8 bytes per later key in buckets that spill to a temporary
directory past ``SPILL_BYTES`` (see ``KeySet``).
"""

from __future__ import annotations

import math
import struct

MEMORY_KEYS = 65_536  # fingerprints held in a set (about 5 MB); later keys go to buckets
SPILL_BYTES = 2 * 2**20  # the later keys' bucket bytes held in memory before they go to files
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
    """``add_batch(keys)``: which of these keys came before; ``finish()``: how many more did.

    The first ``memory_keys`` distinct keys are held as a set of fingerprints, and every key is
    checked against it at once, in C (no Python-level work per key unless the batch holds a
    repeat, which is rare): a repeat within them, or of one of them, is found as it comes, with
    its key. Later keys go to 256 buckets of 8-byte fingerprints (``converter/buckets.py``, in
    files past ``SPILL_BYTES``) and a repeat among them is counted by ``finish()``, at the end
    of the stream, a bucket at a time. Memory stays that of ``memory_keys`` keys plus the
    buckets' buffer whatever the number of keys: about 5 MB.
    """

    def __init__(self, *, exact_bytes: bool = False, memory_keys: int | None = None):
        from .buckets import Buckets

        self.fingerprint = bytes_fingerprint if exact_bytes else fingerprint
        self.memory: set[int] = set()
        self.memory_keys = memory_keys or MEMORY_KEYS
        self.later = Buckets(SPILL_BYTES, typecode="q")
        self.spilled = 0  # keys that went to the buckets

    def _fingerprints(self, keys: list) -> list[int]:
        # one type throughout (all str, or all bytes in a store): its own keyed hash, in C
        if set(map(type, keys)) == (_BYTES if self.fingerprint is bytes_fingerprint else _STR):
            return list(map(hash, keys))
        return list(map(self.fingerprint, keys))

    def add_batch(self, keys: list) -> list[int]:
        """Add ``keys``; return the positions (in ``keys``) of those that repeat an earlier key.

        Past ``memory_keys`` keys, a key that repeats another such later key is not among the
        positions: ``finish()`` counts it.
        """
        fps = self._fingerprints(keys)
        batch = set(fps)
        memory = self.memory
        if len(batch) == len(fps) and memory.isdisjoint(batch):
            repeats = []
            room = self.memory_keys - len(memory)
            if len(fps) <= room:
                memory |= batch
                return repeats
            new = fps
        else:
            repeats, seen, new = [], set(), []
            for i, h in enumerate(fps):
                if h in memory or h in seen:
                    repeats.append(i)
                else:
                    seen.add(h)
                    new.append(h)
            room = self.memory_keys - len(memory)
            if len(new) <= room:
                memory |= seen
                return repeats
        memory.update(new[:room])  # the first keys, in order, are the ones held
        later = new[room:]
        parts = self.later.parts
        for h in later:
            parts[h & 255].append(h)
        self.spilled += len(later)
        self.later.grew(8 * len(later))
        return repeats

    def finish(self) -> int:
        """How many of the keys past ``memory_keys`` repeat an earlier one (0 when none did)."""
        from array import array

        from .buckets import COUNT

        repeats = 0
        if self.spilled:
            for i in range(COUNT):
                fps = array("q", self.later.bucket(i))
                repeats += len(fps) - len(set(fps))
        self.later.close()
        self.spilled = 0
        return repeats

    def close(self) -> None:
        self.later.close()
        self.memory = set()
