"""The speed paths added for the benchmarks give exactly what the general paths give.

    /work/venv/bin/pytest -q benchmarks/test_fastpaths.py

* converter.safepickle: the fast opcode walk (_walk/_scan_complete) accepts only what _scan
  accepts, with the same end, Python 2 string flag and EXT/PERSID offsets; pickles read from
  a stream in small chunks (the resumed walk) give the same objects and errors.
* converter.jsontags: dumps() of values that are plain JSON (the C-encoder path) is the text
  of the general path (encode/plain + json.dumps), for both styles, and values that need a tag
  or a change still get it.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import io
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converter import jsontags, safepickle
from converter.jsontags import fast as jsonfast, text as jsontext
from converter.errors import ConverterError

# -- safepickle -------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=300),
    st.binary(max_size=300), st.decimals(allow_nan=False), st.datetimes(), st.complex_numbers(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=20), st.integers()), inner, max_size=6),
        st.frozensets(st.integers(), max_size=4),
    ),
    max_leaves=30,
)


def reference(data: bytes):
    try:
        info = safepickle._scan(data, 0, lambda target, line: len(data))
    except (safepickle._Cut, safepickle._Bad):
        return None
    return info.end, info.has_string, info.ext_at, info.persid_at


def fast(data: bytes):
    info = safepickle._scan_complete(data)
    return None if info is None else (info.end, info.has_string, info.ext_at, info.persid_at)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(0, pickle.HIGHEST_PROTOCOL), st.data())
def test_walk_agrees_with_scan(value, protocol, data):
    raw = pickle.dumps(value, protocol=protocol)
    assert fast(raw) == reference(raw)
    # damaged copies: cut, a byte changed, bytes appended
    cut = data.draw(st.integers(0, len(raw)))
    at = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.integers(0, 255))
    changed = raw[:at] + bytes([byte]) + raw[at + 1:]
    for damaged in (raw[:cut], changed, raw + changed):
        got = fast(damaged)
        assert got is None or got == reference(damaged)


@pytest.mark.parametrize("raw", [
    b"\x80\x02c__builtin__\nset\nq\x00]q\x01K\x01a\x85q\x02Rq\x03.",  # GLOBAL lines, BINPUT
    b"(dp0\nS'a'\np1\nI1\ns.",  # protocol 0 with a Python 2 STRING
    b"\x80\x02U\x03abcq\x00.",  # SHORT_BINSTRING
    b"\x80\x02\x82\x01.",  # EXT1
    b"\x80\x02Pabc\n.",  # PERSID
    b"\x80\x02K\x01Q.",  # BINPERSID
    b"\x80\x02K\x01r\x00\x00\x00\x01.",  # LONG_BINPUT far beyond the data: _scan refuses it
    b"\x80\x02K\x01p1234567\n.",  # a PUT argument of 7 characters: _scan decides
    b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00X\x03\x00\x00\x00abc.",
    b"\x80\x04X\xff\xff\xff\x7fab.",  # a length beyond the data
    b"\x80\x02T\xff\xff\xff\xffab.",  # a negative BINSTRING length
    b"\x80\x02\xff.",  # not an opcode
])
def test_walk_on_odd_opcodes(raw):
    got = fast(raw)
    assert got is None or got == reference(raw)


def _load_all(data: bytes, chunk: int):
    class Chunked(io.RawIOBase):  # a stream that hands out at most `chunk` bytes per read
        def __init__(self):
            self.f = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            piece = self.f.read(min(len(b), chunk))
            b[:len(piece)] = piece
            return len(piece)

    try:
        return list(safepickle.iter_pickles(io.BufferedReader(Chunked(), 7), name="x"))
    except ConverterError as exc:
        return type(exc), str(exc)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.integers(0, pickle.HIGHEST_PROTOCOL),
       st.integers(1, 64), st.integers(0, 10**6))
def test_streamed_pickles_as_in_memory(objs, protocol, chunk, cut):
    data = b"".join(pickle.dumps(o, protocol=protocol) for o in objs)
    data = data[:cut % (len(data) + 1)]
    expected = _load_all(data, 1 << 30)
    got = _load_all(data, chunk)
    assert repr(got) == repr(expected)


def test_big_pickle_streams_without_a_copy():
    people = {f"k{i}": {"key": f"k{i}", "name": "Omkar Pathak", "age": i % 90, "pay": i * 7}
              for i in range(50_000)}
    data = pickle.dumps(people, protocol=4) + pickle.dumps({"k1": 1}, protocol=2)
    assert fast(data[:len(pickle.dumps(people, protocol=4))]) is not None
    got = list(safepickle.iter_pickles(io.BytesIO(data), name="x"))
    assert got == [people, {"k1": 1}]


# -- jsontags ---------------------------------------------------------------------------------

json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
              st.sampled_from(["\ud800", "a\udfffb", "$x", "$", 2**53 - 1, 2**53, -(2**53), 10**30])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8) | st.sampled_from(["$set", "$int", "\ud801"]), inner, max_size=5),
        st.dictionaries(st.integers(), inner, max_size=2),
        st.tuples(inner),
    ),
    max_leaves=25,
)


def general(value, style):
    changes = collections.Counter()
    obj = jsontags.encode(value) if style == "tagged" else jsontags.plain(value, changes)
    return jsontext._to_text(obj), changes


@settings(max_examples=500, deadline=None)
@given(json_like, st.sampled_from(["tagged", "plain"]))
def test_dumps_fast_path_is_the_general_text(value, style):
    changes = collections.Counter()
    assert (jsontags.dumps(value, style=style, changes=changes), changes) == general(value, style)


@pytest.mark.parametrize("value", [
    {"a": float("nan")}, [float("-inf")], {"k": 2**53}, [-(2**53)], {"\ud800": 1}, ["x\udc00"],
    {"$set": [1]}, {1: "a"}, {"a": (1, 2)}, {"a": b"x"}, {"a": decimal.Decimal("1.5")},
    {"a": datetime.date(2024, 2, 29)}, {"a": collections.OrderedDict(a=1)}, {"a": True, "b": None},
    {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
])
def test_dumps_values_that_need_the_general_path(value):
    for style in ("tagged", "plain"):
        changes = collections.Counter()
        assert (jsontags.dumps(value, style=style, changes=changes), changes) == general(value, style)


def test_dumps_cycle_still_refused():
    a = []
    a.append(a)
    with pytest.raises(ConverterError, match="cyclic"):
        jsontags.dumps({"a": a})


def test_fast_path_is_taken_for_records():
    rec = {"key": "Omkar", "name": "Omkar Pathak", "age": 21, "pay": 40000.5, "ok": True, "x": None}
    assert jsonfast._plain_text(rec) == '{"key":"Omkar","name":"Omkar Pathak","age":21,"pay":40000.5,"ok":true,"x":null}'
    assert jsonfast._plain_text({"k": 2**53}) is None


# -- the SQLite table writer ----------------------------------------------------------------------

def _write_sqlite(tmp_path, records, general_only, monkeypatch, tag):
    import sqlite3
    from pathlib import Path

    from converter.options import Options
    from converter.plugins import sqlite as plugin

    with monkeypatch.context() as m:
        if general_only:
            m.setattr(plugin, "_shape", lambda *args: None)
        path = Path(tmp_path) / tag / "out.sqlite"  # the table is named after the file
        path.parent.mkdir(exist_ok=True)
        if path.exists():
            path.unlink()
        options = Options()
        try:
            plugin._write(path, iter(records), options)
        except ConverterError as exc:
            return type(exc).__name__, str(exc).replace(str(path), "OUT")
        con = sqlite3.connect(path)
        dump = list(con.iterdump())
        con.close()
        return dump, [n.replace(str(path), "OUT") for n in options.notes]


field_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=False),
                         st.text(max_size=5), st.binary(max_size=3))
record_keys = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.floats(allow_nan=False, width=16))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(record_keys, st.dictionaries(st.sampled_from(["key", "name", "age", "pay"]), field_values,
                                                      max_size=4)), max_size=30),
       st.booleans())
def test_sqlite_fast_path_writes_what_the_general_path_writes(tmp_path, monkeypatch, records, repeat_shape):
    if repeat_shape and records:  # many records of one shape, as in real data
        key0, value0 = records[0]
        records = records + [(f"r{i}", {**value0, **({"key": f"r{i}"} if "key" in value0 else {})})
                             for i in range(20)]
    fast_result = _write_sqlite(tmp_path, records, False, monkeypatch, "fast")
    general_result = _write_sqlite(tmp_path, records, True, monkeypatch, "general")
    assert fast_result == general_result


def test_sqlite_fast_path_on_people(tmp_path, monkeypatch):
    people = [(f"k{i}", {"key": f"k{i}", "name": "Omkar Pathak", "age": i % 90, "pay": i * 1000})
              for i in range(3000)]
    people[2500][1]["pay"] = 2**63  # beyond SQLite's INTEGER: the general path must name it
    assert _write_sqlite(tmp_path, people, False, monkeypatch, "a") == \
        _write_sqlite(tmp_path, people, True, monkeypatch, "b")
    del people[2500]
    people[10] = (-0.0, {"name": "x", "age": 1, "pay": 2})  # a record of another shape in the middle
    fast = _write_sqlite(tmp_path, people, False, monkeypatch, "c")
    assert fast == _write_sqlite(tmp_path, people, True, monkeypatch, "d")


def test_sqlite_fast_path_is_taken(tmp_path, monkeypatch):
    from converter.plugins import sqlite as plugin

    calls = []
    real = plugin._shape

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(plugin, "_shape", counting)
    people = [(f"k{i}", {"key": f"k{i}", "name": "Omkar Pathak", "age": i % 90, "pay": i * 1000.5})
              for i in range(3000)]
    assert "table layout" in _write_sqlite(tmp_path, people, False, monkeypatch, "x")[1][-1]
    assert len(calls) == 1  # only the first record took the general path


def test_dumps_without_the_c_encoder(monkeypatch):
    """Without json's C accelerator the general path writes every value, with the same text."""
    values = [{"key": "Omkar", "age": 21, "pay": 40000.5}, [1, None, True], "x", {"$a": 1}, {"k": 2**60}]
    expected = [jsontags.dumps(v) for v in values]
    monkeypatch.setattr(jsonfast, "_c_encode", None)
    assert [jsontags.dumps(v) for v in values] == expected
    assert jsonfast._plain_text({"a": 1}) is None


# -- jsontags.plain_texts: a batch of values through one C encoder call -----------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(json_like | st.just(jsonfast._SPLIT) | st.just([0, jsonfast._SPLIT, 1]), min_size=1, max_size=8))
def test_batch_texts_are_the_one_by_one_texts(values):
    texts = jsontags.plain_texts(values)
    one_by_one = [jsonfast._plain_text(v) for v in values]
    if texts is not None:  # taken only when every value is plain, and then with the same texts
        assert texts == one_by_one
    elif all(t is not None for t in one_by_one):  # refused a plain batch: only for a shared
        # container (which the value-by-value check refuses within a value only) or the sentinel
        assert any('"\\u0000\\u0001split"' in t for t in one_by_one) or len(values) > 1, values


def test_batch_refuses_what_needs_a_tag_and_takes_records():
    people = [{"key": f"k{i}", "name": "Omkar Pathak", "age": 21 + i, "pay": 40000.5, "tags": ["a"]} for i in range(50)]
    assert jsontags.plain_texts(people) == [jsonfast._plain_text(p) for p in people]
    shared = ["x"]
    for bad in ({"a": (1, 2)}, {"k": 2**53}, {"a": float("nan")}, {"$set": 1}, {1: "a"}, ["x\udc00"],
                [shared, shared], jsonfast._SPLIT, [0, jsonfast._SPLIT, 1]):
        if isinstance(bad, str):  # the sentinel alone is plain, and must come back whole
            assert jsontags.plain_texts(people[:2] + [bad]) in (None, [*jsontags.plain_texts(people[:2]), '"\\u0000\\u0001split"'])
            continue
        assert jsontags.plain_texts(people[:3] + [bad]) is None, bad
