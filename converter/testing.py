"""Test helpers for converter and for plugin authors: a corpus of tricky values and one
round-trip helper that sends it through any chain of formats.

    from converter.testing import TRICKY, assert_same, roundtrip

    def test_my_format(tmp_path):
        assert_same(roundtrip(tmp_path, TRICKY, ["myformat"]), TRICKY)
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
from collections import OrderedDict, defaultdict, deque
from decimal import Decimal
from pathlib import Path

from .options import Options
from .pipeline import convert
from .registry import get_registry

_TZ = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")

# Keys are str except where a test says otherwise; values cover everything the JSON tags name.
TRICKY: dict = {
    "str": "plain text",
    "unicode ключ 日本": "naïve ☃ 𝄞",
    "": "the empty key",
    "empty": "",
    "bytes": b"\x00\xff binary \x80",
    "empty bytes": b"",
    "bytearray": bytearray(b"ab\x00"),
    "tuple": (1, "a", (2, (3,))),
    "empty tuple": (),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "datetime": dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
    "aware datetime": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_TZ),
    "date": dt.date(1999, 12, 31),
    "time": dt.time(23, 59, 59, 1),
    "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "timezone": dt.timezone.utc,
    "decimal": Decimal("1.10"),
    "complex": 1 + 2j,
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "-0.0": -0.0,
    "float": 1.5,
    "big int": 2**100,
    "big negative": -(2**64) - 1,
    "2**53": 2**53,
    "int": 42,
    "bool": True,
    "none": None,
    "int keys": {1: "a", 2: "b"},
    "tuple keys": {(1, 2): "x", None: "none key"},
    "nested": {"a": [{"b": {"c": [1, 2, {"d": None}]}}], "e": []},
    "empty dict": {},
    "empty list": [],
    "looks like a tag": {"$bytes": "not a tag"},
    "ordered": OrderedDict([("z", 1), ("a", 2)]),
    "defaultdict": defaultdict(list, {"k": [1]}),
    "deque": deque([1, "two"]),
    "flat record": {"key": "flat record", "name": "Omkar Pathak", "age": 21, "pay": 40000},
}

# A binary key: dbm stores and pickle hold it; shelve (str keys) must refuse it loudly.
TRICKY_WITH_BINARY_KEY: dict = {**TRICKY, b"binary \xff key": "value under a binary key"}


def assert_same(got, expected, path="value"):
    """Deep equality that also compares types (1 != 1.0 != True), NaN, and -0.0."""
    assert type(got) is type(expected), f"{path}: {type(got).__name__} {got!r} != {type(expected).__name__} {expected!r}"
    if isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(got), f"{path}: {got!r} != nan"
        else:
            assert got == expected and math.copysign(1, got) == math.copysign(1, expected), f"{path}: {got!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert list(map(_keyrepr, got)) == list(map(_keyrepr, expected)) or set(map(_keyrepr, got)) == set(
            map(_keyrepr, expected)), f"{path}: keys {list(got)} != {list(expected)}"
        if isinstance(expected, defaultdict):
            assert got.default_factory is expected.default_factory, f"{path}: default_factory differs"
        for k in expected:
            assert_same(got[k], expected[k], f"{path}[{k!r}]")
    elif isinstance(expected, (list, tuple, deque)):
        assert len(got) == len(expected), f"{path}: length {len(got)} != {len(expected)}"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(expected, dt.datetime):
        assert got == expected and got.tzinfo == expected.tzinfo and got.fold == expected.fold, f"{path}: {got!r} != {expected!r}"
    else:
        assert got == expected, f"{path}: {got!r} != {expected!r}"
        if isinstance(expected, Decimal):
            assert str(got) == str(expected), f"{path}: {got} != {expected}"


def _keyrepr(k):
    return (type(k).__name__, repr(k))


def _suffix(fmt: str) -> str:
    return {"dbm.dumb": "", "shelve": "", "dbm.gnu": ".gdbm", "dbm.ndbm": ""}.get(fmt, "")


def roundtrip(tmp_path: Path, data: dict, formats: list[str], registry=None, **option_fields) -> dict:
    """Write ``data`` as a pickle, convert it through every format in ``formats`` in turn, then
    back to a pickle, and return what that pickle holds. Each step is a real conversion."""
    registry = registry or get_registry()
    tmp_path = Path(tmp_path)
    src = tmp_path / "start.pkl"
    with open(src, "wb") as f:
        pickle.dump(data, f, protocol=4)
    previous, previous_fmt = src, "pickle"
    for i, fmt in enumerate(formats):
        out = tmp_path / f"step{i}-{fmt.replace('.', '_')}{_suffix(fmt)}"
        convert(previous, out, from_=previous_fmt, to=fmt, options=Options(**option_fields), registry=registry)
        previous, previous_fmt = out, fmt
    final = tmp_path / "end.pkl"
    convert(previous, final, from_=previous_fmt, to="pickle", options=Options(**option_fields), registry=registry)
    with open(final, "rb") as f:
        return pickle.load(f)
