"""converter/keyset.py: which keys are the same key, spilled or not, and no hash flooding."""

import time

import pytest

from converter.keyset import KeySet, fingerprint


def test_python_equal_keys_are_one_key_and_every_nan_too():
    assert fingerprint(1) == fingerprint(1.0) == fingerprint(True)
    assert fingerprint(2**70) == fingerprint(float(2**70))
    assert fingerprint(float("nan")) == fingerprint(float("nan"))
    assert fingerprint(0.5) != fingerprint(1)
    assert len({fingerprint("1"), fingerprint(b"1"), fingerprint(1), fingerprint(None), fingerprint((1,))}) == 5


def test_exact_bytes_keys_are_compared_as_stored():
    ks = KeySet(exact_bytes=True)
    assert ks.add_batch([b"a", b"b", b"a", bytearray(b"b")]) == [2, 3]


def test_repeats_are_found_within_and_across_batches():
    ks = KeySet()
    assert ks.add_batch([f"k{i}" for i in range(1000)]) == []
    assert ks.add_batch(["new", "k3", "new", 3, 3.0]) == [1, 2, 4]
    assert ks.add_batch([f"x{i}" for i in range(2000)]) == []
    assert ks.add_batch(["x1999", "k0", "fresh"]) == [0, 1]
    assert ks.finish() == 0
    ks.close()


def test_past_the_memory_keys_repeats_are_counted_at_the_end_from_spilled_buckets(monkeypatch):
    import converter.keyset as keyset

    monkeypatch.setattr(keyset, "SPILL_BYTES", 4096)  # 512 fingerprints: the buckets go to files
    ks = KeySet(memory_keys=700)
    assert ks.add_batch([f"k{i}" for i in range(1000)]) == []  # k700... are past the set
    assert ks.add_batch(["new", "k3", "new", 3, 3.0]) == [1, 2, 4]  # repeats of held keys: at once
    assert ks.add_batch([f"x{i}" for i in range(2000)]) == []
    assert ks.later.spilled  # the later fingerprints really went to files
    assert ks.add_batch(["x1999", "k0", "fresh", "k999", "x5"]) == [1]  # only k0 was held
    assert ks.add_batch(["x5"]) == []
    assert ks.finish() == 4  # x1999, k999 and x5 twice: later keys that came before
    ks.close()


def test_ints_sharing_one_python_hash_take_bounded_time():
    """i * (2**61 - 1) all hash to 0 in CPython: a plain set of them is quadratic."""
    keys = [i * (2**61 - 1) for i in range(120_000)]
    ks = KeySet()
    started = time.perf_counter()
    for i in range(0, len(keys), 1000):
        assert ks.add_batch(keys[i:i + 1000]) == []
    assert time.perf_counter() - started < 10  # seconds; a plain set needs minutes
