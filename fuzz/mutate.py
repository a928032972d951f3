"""A Hypothesis strategy for damaged files: a seed, then a few mutations of its bytes.

Mutations: flip bits, overwrite a run with random bytes, truncate, insert random bytes,
splice in a slice of another seed, duplicate a slice (repeated structures, loops), and set a
4-byte field to an extreme value (sizes and offsets that point past the end).
"""

from __future__ import annotations

from hypothesis import strategies as st

_EXTREMES = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
             b"\x7f\xff\xff\xff", b"\x00\x00\x10\x00", b"\x01\x00\x00\x00"]


@st.composite
def _mutation(draw, seeds):
    kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert", "splice", "duplicate", "extreme"]))
    pos = draw(st.floats(0, 1, exclude_max=True))  # where, as a fraction of the current length
    if kind == "flip":
        return kind, pos, draw(st.integers(0, 7))
    if kind in ("overwrite", "insert"):
        return kind, pos, draw(st.binary(min_size=1, max_size=16))
    if kind == "splice":
        return kind, pos, (draw(st.integers(0, len(seeds) - 1)), draw(st.floats(0, 1)), draw(st.integers(1, 512)))
    if kind == "duplicate":
        return kind, pos, draw(st.integers(1, 4096))
    if kind == "extreme":
        return kind, pos, draw(st.sampled_from(_EXTREMES))
    return kind, pos, None


def apply(seed: bytes, mutations, seeds) -> bytes:
    data = bytearray(seed)
    for kind, pos, arg in mutations:
        at = int(pos * len(data)) if data else 0
        if kind == "flip" and data:
            data[at] ^= 1 << arg
        elif kind == "overwrite":
            data[at:at + len(arg)] = arg
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = arg
        elif kind == "splice":
            other = seeds[arg[0]]
            start = int(arg[1] * len(other))
            data[at:at + arg[2]] = other[start:start + arg[2]]
        elif kind == "duplicate":
            data[at:at] = data[at:at + arg]
        elif kind == "extreme" and data:
            data[at:at + 4] = arg
    return bytes(data)


def mutated(seeds: list[bytes]):
    """Bytes: one of ``seeds`` with 0-4 mutations (0 keeps the seed, which must read cleanly too)."""
    seeds = [s for s in seeds if s] or [b""]

    @st.composite
    def strategy(draw):
        seed = seeds[draw(st.integers(0, len(seeds) - 1))]
        muts = draw(st.lists(_mutation(seeds), min_size=0, max_size=4))
        return apply(seed, muts, seeds)

    return strategy()
