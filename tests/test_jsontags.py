"""converter.jsontags: lossless tagged JSON, the lossy plain style, strict parsing."""

import base64
import collections
import datetime as dt
import decimal
import enum
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converter import jsontags
from converter.jsontags import encoder as jsonencode, text as jsontext
from converter.errors import FormatError, UnsupportedValueError
from converter.jsontags import TAG_PREFIX, decode, dumps, encode, loads, object_pairs_hook, plain

ROOT = Path(__file__).resolve().parent.parent


# --- an exact comparison: type, order, float sign, tzinfo, fold ------------------

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b) and math.copysign(1, a) == math.copysign(1, b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, dict):
        if isinstance(a, collections.defaultdict) and a.default_factory is not b.default_factory:
            return False
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    if isinstance(a, (list, tuple, collections.deque)):
        if isinstance(a, collections.deque) and a.maxlen != b.maxlen:
            return False
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (set, frozenset)):
        return a == b
    if isinstance(a, (dt.datetime, dt.time)):
        return a == b and a.fold == b.fold and same_tz(a.tzinfo, b.tzinfo) and str(a) == str(b)
    if isinstance(a, dt.timezone):
        return same_tz(a, b)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, slice):
        return same(a.start, b.start) and same(a.stop, b.stop) and same(a.step, b.step)
    return a == b


def same_tz(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dt.timezone):
        return a.__getinitargs__() == b.__getinitargs__()
    return a == b or (getattr(a, "key", None) == getattr(b, "key", None) and a is not None)


def roundtrip(value):
    text = dumps(value)
    text.encode("utf-8")  # always writable as UTF-8
    back = loads(text)
    assert same(back, value), (value, text, back)
    assert dumps(back) == text  # stable: the decoded value writes the same text
    return text


# --- plain data stays plain ---------------------------------------------------

def test_plain_data_is_written_as_itself():
    people = {"Omkar": {"key": "Omkar", "name": "Omkar Pathak", "age": 21, "pay": 40000}}
    assert encode(people) == people
    assert json.loads(dumps(people)) == people
    assert loads(dumps(people)) == people


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2**53 - 1, -(2**53 - 1), 1.5, -0.0, 0.0, 1e308, 5e-324, "", "é\U0001F600\x00",
    [], {}, [1, [2, [3]]], {"a": {"b": [None, True]}}, {"$a": 1, "$b": 2}, {"a": 1}, {"x$": 1},
])
def test_json_values_encode_to_themselves(value):
    encoded = encode(value)
    assert same(encoded, value)
    assert same(json.loads(json.dumps(encoded)), value)
    roundtrip(value)


def test_negative_zero_is_plain_json():
    text = dumps(-0.0)
    assert text == json.dumps(-0.0) == "-0.0"
    assert math.copysign(1, loads(text)) == -1


def test_bool_is_not_an_int():
    assert encode([True, 1, False, 0]) == [True, 1, False, 0]
    back = loads(dumps((True, 1)))
    assert [type(x) for x in back] == [bool, int]


# --- each tag -------------------------------------------------------------------

NY = zoneinfo.ZoneInfo("America/New_York")
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

TAGGED = [
    b"", b"\x00\xff\xfe", bytearray(b"abc"), (), (1, (2, (3,))), {3, 1, 2}, set(), frozenset({"a", (1, 2)}),
    dt.date(2024, 2, 29), dt.date(1, 1, 1), dt.date(9999, 12, 31),
    dt.datetime(2024, 2, 29, 13, 45), dt.datetime(2024, 2, 29, 13, 45, 0, 1),
    dt.datetime(2024, 2, 29, 13, 45, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 2, 29, 13, 45, 0, 999999, tzinfo=IST),
    dt.datetime(2024, 2, 29, 13, 45, tzinfo=dt.timezone(dt.timedelta(seconds=-3661, microseconds=5))),
    dt.datetime(2024, 2, 29, 13, 45, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
    dt.datetime(2024, 2, 29, 13, 45, tzinfo=dt.timezone(dt.timedelta(0), "UTC")),
    dt.datetime(2021, 11, 7, 1, 30, fold=0, tzinfo=NY), dt.datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=NY),
    dt.datetime(2021, 11, 7, 1, 30, fold=1),
    dt.time(0), dt.time(23, 59, 59, 999999), dt.time(1, 2, tzinfo=IST), dt.time(1, 2, fold=1),
    dt.time(1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-2), "X")),
    dt.timedelta(0), dt.timedelta(-1), dt.timedelta(days=-999999999), dt.timedelta.max, dt.timedelta(microseconds=-1),
    dt.timezone.utc, dt.timezone(dt.timedelta(0), "UTC"), IST, dt.timezone(dt.timedelta(hours=-23, minutes=-59), "W"),
    NY,
    decimal.Decimal("1.50"), decimal.Decimal("-0"), decimal.Decimal("0E-7"), decimal.Decimal("1E+999999"),
    decimal.Decimal("NaN"), decimal.Decimal("-sNaN42"), decimal.Decimal("Infinity"), decimal.Decimal("-Infinity"),
    decimal.Decimal("3.14159265358979323846264338327950288419716939937510"),
    1j, complex(-0.0, 2.5), complex(math.inf, math.nan), complex(-math.inf, -0.0),
    math.nan, -math.nan, math.inf, -math.inf,
    2**53, -(2**53), 2**64, -(2**63) - 1, 10**4299, 10**4300 + 7, -(10**5000) + 1, 3**30000,
    {1: "a"}, {None: 1, True: 2, 1.5: 3, (1, "a"): 4, b"k": 5, frozenset(): 6}, {"a": 1, 2: "b"},
    collections.OrderedDict([("b", 1), ("a", 2)]), collections.OrderedDict([(1, 2)]), collections.OrderedDict(),
    collections.defaultdict(list, {"a": [1]}), collections.defaultdict(None, {1: 2}),
    collections.defaultdict(int), collections.defaultdict(dict),
    collections.deque(), collections.deque([1, (2,)]), collections.deque([1, 2], maxlen=2), collections.deque(maxlen=0),
    range(0), range(-5, 10**30, 7), range(10, 0, -3), slice(None), slice(1, "a", (2,)),
    "\ud800", "a\udc00b", "\udbff\udfff", "ok\U0001F600",
    {"$set": 1}, {"$escape": {"$x": 1}}, {"$": None}, {"$tuple": [1, 2]}, {"$bytes": "AA=="},
    {"\ud800": 1}, {"$\ud800": 1},
]


@pytest.mark.parametrize("value", TAGGED, ids=lambda v: type(v).__name__)
def test_tagged_values_round_trip(value):
    text = roundtrip(value)
    obj = json.loads(text)  # ordinary JSON text any parser reads
    if type(value) not in (dict, int, float, str) or isinstance(value, bool):
        assert isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)).startswith(TAG_PREFIX)


def test_tags_are_single_key_objects_named_in_the_table():
    for value in TAGGED:
        obj = encode(value)
        if isinstance(obj, dict) and len(obj) == 1:
            key = next(iter(obj))
            if key.startswith(TAG_PREFIX):
                assert f"``{key}``" in jsontags.__doc__, key


def test_payload_shapes():
    """The documented payloads, checked against independent computations."""
    raw = bytes(range(256))
    assert encode(raw) == {"$bytes": base64.b64encode(raw).decode()}
    assert encode(bytearray(raw)) == {"$bytearray": base64.b64encode(raw).decode()}
    assert encode((1, "a")) == {"$tuple": [1, "a"]}
    assert encode(2**53) == {"$int": str(2**53)}
    assert encode(-(2**53)) == {"$int": str(-(2**53))}
    assert encode(math.inf) == {"$float": "inf"}
    assert encode(decimal.Decimal("-1.50E+3")) == {"$decimal": str(decimal.Decimal("-1.50E+3"))}
    day = dt.date(2024, 2, 29)
    assert encode(day) == {"$date": day.isoformat()}
    stamp = dt.datetime(2024, 2, 29, 13, 45, 0, 1, tzinfo=IST)
    assert encode(stamp) == {"$datetime": stamp.isoformat()}
    assert encode(dt.timedelta(days=-1, seconds=5, microseconds=7)) == {"$timedelta": [-1, 5, 7]}
    assert encode({1: 2}) == {"$dict": [[1, 2]]}
    assert encode({"$set": [1]}) == {"$escape": {"$set": [1]}}
    assert encode(collections.deque([1], maxlen=3)) == {"$deque": {"items": [1], "maxlen": 3}}
    assert encode(collections.defaultdict(list)) == {"$defaultdict": {"factory": "list", "items": []}}
    assert encode(complex(1, math.nan)) == {"$complex": [1.0, {"$float": "nan"}]}
    folded = dt.datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=NY)
    assert encode(folded) == {"$datetime": {"local": "2021-11-07T01:30:00", "tz": {"$zoneinfo": NY.key}, "fold": 1}}
    assert encode("\ud800") == {"$str": base64.b64encode("\ud800".encode("utf-8", "surrogatepass")).decode()}


def test_int_boundaries():
    limit = 2**53 - 1
    for n in (limit, -limit):
        assert encode(n) == n
    for n in (limit + 1, -limit - 1):
        assert encode(n) == {"$int": str(n)}
        assert loads(dumps(n)) == n


def test_huge_ints_ignore_the_digit_limit():
    """Python 3.11 refuses str(int) beyond 4300 digits; tagged JSON must not."""
    if not hasattr(sys, "set_int_max_str_digits"):
        pytest.skip("no int digit limit in this Python")
    values = [7**20000 + 12345, -(10**9000) - 1, 10**4300, 2**70000]
    for n in values:
        back = loads(dumps(n))
        assert back == n
    old = sys.get_int_max_str_digits()
    try:
        sys.set_int_max_str_digits(0)
        reference = [str(n) for n in values]
    finally:
        sys.set_int_max_str_digits(old)
    assert [jsontext._int_to_str(n) for n in values] == reference
    assert [jsontext._str_to_int(s) for s in reference] == values
    # the same works with the smallest limit Python allows
    try:
        sys.set_int_max_str_digits(640)
        assert loads(dumps(values[0])) == values[0]
        assert loads(reference[1]) == values[1]  # a bare 9000-digit JSON number
    finally:
        sys.set_int_max_str_digits(old)


def test_bare_big_json_numbers_read_exactly():
    n = 123456789 * 10**6000 + 1
    digits = "123456789" + "0" * 5999 + "1"  # the text of n, built without str(int)
    text = '{"n": ' + digits + ', "m": [-' + digits + "]}"
    assert loads(text) == {"n": n, "m": [-n]}


def test_sets_are_sorted_the_same_in_every_process():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from converter.jsontags import dumps; "
            "print(dumps([{'b', 'a', 'c', 'zz', 'é'}, frozenset({(1, 'x'), (0,), 5, 'k'}), {b'1', b'2'}]))")
    outputs = set()
    for seed in ("1", "2", "3", "4"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=env, capture_output=True, text=True,
                              check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert loads(outputs.pop()) == [{"a", "b", "c", "zz", "é"}, frozenset({(1, "x"), (0,), 5, "k"}), {b"1", b"2"}]


# --- escaping and unknown tags ------------------------------------------------------

def test_user_dicts_that_look_like_tags_read_back_unchanged():
    mongo = {"$set": {"name": "x"}, }
    assert loads(dumps(mongo)) == mongo
    assert loads(dumps({"q": {"$gt": 5}})) == {"q": {"$gt": 5}}
    assert loads(dumps({"$gt": 5, "$lt": 9})) == {"$gt": 5, "$lt": 9}
    assert encode({"$gt": 5, "$lt": 9}) == {"$gt": 5, "$lt": 9}  # two keys: never a tag, no escaping
    nested = {"$escape": {"$escape": {"$int": "1"}}}
    assert loads(dumps(nested)) == nested


@pytest.mark.parametrize("doc, tag", [
    ('{"$nosuch": 1}', "$nosuch"),
    ('{"$": 1}', "$"),
    ('[1, {"a": {"$Tuple": []}}]', "$Tuple"),
])
def test_unknown_tag_is_an_error_naming_it(doc, tag):
    with pytest.raises(FormatError, match=re.escape(f"unknown tag '{tag}'")):
        loads(doc)


def test_unknown_tag_error_names_the_tag_plainly():
    with pytest.raises(FormatError) as info:
        decode({"$nosuch": 1})
    assert "'$nosuch'" in str(info.value)


@pytest.mark.parametrize("obj", [
    {"$bytes": 5}, {"$bytes": "***"}, {"$bytes": "AAA"}, {"$tuple": {"a": 1}}, {"$set": [[1]]}, {"$set": [1, 1]},
    {"$frozenset": 3}, {"$int": "1.5"}, {"$int": " 12"}, {"$int": "1_000"}, {"$int": 12}, {"$float": "NaN"},
    {"$float": 1.0}, {"$complex": [1, 2]}, {"$complex": [1.0]}, {"$decimal": "abc"}, {"$decimal": " 1"},
    {"$date": "2024-02-30"}, {"$date": 20240229}, {"$datetime": "nope"}, {"$datetime": {"local": "2020-01-01"}},
    {"$datetime": {"local": "2020-01-01T00:00:00", "tz": 5, "fold": 0}},
    {"$datetime": {"local": "2020-01-01T00:00:00", "tz": None, "fold": 2}},
    {"$datetime": {"local": "2020-01-01T00:00:00+01:00", "tz": None, "fold": 0}},
    {"$time": {"local": "25:00", "tz": None, "fold": 0}}, {"$timedelta": [1, 2]}, {"$timedelta": [1, 2, 3.0]},
    {"$timedelta": [10**10, 0, 0]}, {"$timezone": {"offset": [1, 0, 0]}}, {"$timezone": {"offset": [0, 0, 0], "x": 1}},
    {"$timezone": "UTC"}, {"$zoneinfo": "No/Such_Zone"}, {"$zoneinfo": 1},
    {"$dict": [[1]]}, {"$dict": [[[1], 2]]}, {"$dict": [[1, 2], [1, 3]]}, {"$dict": {"a": 1}},
    {"$ordereddict": [1, 2]}, {"$defaultdict": {"factory": "print", "items": []}}, {"$defaultdict": []},
    {"$deque": {"items": [], "maxlen": -1}}, {"$deque": [1, 2]}, {"$range": [0, 1, 0]}, {"$range": [0, 1.0, 1]},
    {"$range": [0, 1]}, {"$slice": [1]}, {"$str": "/w=="}, {"$escape": {"a": 1}}, {"$escape": {"$a": 1, "$b": 2}},
    {"$escape": 1}, {"$bytearray": None},
])
def test_malformed_payloads_are_format_errors_naming_the_tag(obj):
    tag = next(iter(obj))
    with pytest.raises(FormatError) as info:
        decode(obj)
    assert tag in str(info.value)
    with pytest.raises(FormatError):
        loads(json.dumps({"outer": [obj]}))


def test_decode_names_the_file_when_told():
    with pytest.raises(FormatError, match=r"^people\.json: unknown tag"):
        decode({"$what": 1}, name="people.json")


# --- refused values ---------------------------------------------------------------

class Thing:
    pass


class Color(enum.IntEnum):
    RED = 1


class MyStr(str):
    pass


class OddZone(dt.tzinfo):
    def utcoffset(self, d):
        return dt.timedelta(hours=1)


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize("value, name", [
    (Thing(), "Thing"), (len, "builtin_function_or_method"), (lambda: 1, "function"), (Color.RED, "Color"),
    (MyStr("a"), "MyStr"), (Point(1, 2), "Point"), (Ellipsis, "ellipsis"), (object(), "object"),
    ([1, {"a": (Thing(),)}], "Thing"), ({Thing(): 1}, "Thing"), ({(1, Thing()): 1}, "Thing"),
    (collections.Counter(a=1), "Counter"), (memoryview(b"a"), "memoryview"),
])
def test_unsupported_values_name_their_type(value, name):
    with pytest.raises(UnsupportedValueError, match=name):
        encode(value)
    with pytest.raises(UnsupportedValueError, match=name):
        dumps(value, style="plain", changes=collections.Counter())


def test_defaultdict_needs_a_builtin_factory_in_tagged_json_only():
    value = collections.defaultdict(lambda: 0, a=1)
    with pytest.raises(UnsupportedValueError, match="default_factory"):
        encode(value)
    changes = collections.Counter()
    assert plain(value, changes) == {"a": 1} and changes == {"defaultdict": 1}


def test_other_tzinfo_is_refused_by_tagged_but_written_by_plain():
    stamp = dt.datetime(2020, 1, 1, tzinfo=OddZone())
    with pytest.raises(UnsupportedValueError, match="OddZone"):
        encode(stamp)
    changes = collections.Counter()
    assert plain(stamp, changes) == stamp.isoformat() == "2020-01-01T00:00:00+01:00"
    assert changes == {"datetime": 1}


def test_cycles_are_refused_not_recursion_errors():
    a = []
    a.append(a)
    d = {}
    d["self"] = [d]
    t = ([],)
    t[0].append(t)
    od = collections.OrderedDict()
    od[1] = collections.deque([od])
    for value in (a, d, t, od, [1, [2, a]]):
        for run in (encode, lambda v: plain(v, collections.Counter()), dumps):
            with pytest.raises(UnsupportedValueError, match="cyclic value cannot be written as JSON"):
                run(value)


def test_shared_references_are_not_cycles():
    shared = [1, 2]
    value = {"a": shared, "b": (shared, shared), "c": [[shared]]}
    assert loads(dumps(value)) == value


# --- deep nesting -----------------------------------------------------------------

DEPTH = 100_000


def nest(depth, wrap):
    value = None
    for _ in range(depth):
        value = wrap(value)
    return value


def depth_of(value, step):
    n = 0
    while value is not None:
        value = step(value)
        n += 1
    return n


@pytest.mark.parametrize("wrap, step", [
    (lambda v: [v], lambda v: v[0]),
    (lambda v: {"k": v}, lambda v: v["k"]),
    (lambda v: (v,), lambda v: v[0]),
    (lambda v: {1: v}, lambda v: v[1]),
    (lambda v: {"$x": v}, lambda v: v["$x"]),
], ids=["list", "dict", "tuple", "intkey-dict", "escaped"])
def test_deep_nesting_round_trips(wrap, step):
    value = nest(DEPTH, wrap)
    back = loads(dumps(value))
    assert depth_of(back, step) == DEPTH


def test_deep_nesting_plain():
    changes = collections.Counter()
    value = nest(DEPTH, lambda v: ({"k": v},))
    back = loads(dumps(value, style="plain", changes=changes))  # json.loads would hit RecursionError
    assert depth_of(back, lambda v: v[0]["k"]) == DEPTH
    assert changes == {"tuple": DEPTH}


def test_deep_text_written_by_json_module_shape():
    """The iterative writer produces the same text as json.dumps where json.dumps can run."""
    value = nest(500, lambda v: [v, {"a": (1.5, "é")}])
    obj = encode(value)
    for indent in (None, 2, "\t", 0):
        separators = (",", ":") if indent is None else (",", ": ")
        assert jsontext._to_text_iterative(obj, indent) == json.dumps(
            obj, ensure_ascii=False, indent=indent, separators=separators)


# --- strict loads ------------------------------------------------------------------

@pytest.mark.parametrize("doc, problem", [
    ("", "empty"), ("  \n", "whitespace"), ("NaN", "NaN"), ("[1, Infinity]", "Infinity"),
    ('{"a": -Infinity}', "-Infinity"), ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('[{"b": {"c": 1, "c": 1}}]', "duplicate key 'c'"), ("[1] [2]", "extra data"), ("[1,]", "line 1"),
    ('["\\ud800"]', "lone surrogate"), ('["\\udc00x"]', "lone surrogate"), ('["\\ud800\\ud800"]', "lone surrogate"),
    ('{"\\udfff": 1}', "lone surrogate"), ('["\\\\\\ud800"]', "lone surrogate"), ("[1,\n 2", "line 2"),
    ("\ud800", "lone surrogate"), ("[01]", "line 1"), ('"\t"', "control character"),
])
def test_loads_is_strict(doc, problem):
    with pytest.raises(FormatError, match=problem):
        loads(doc)


def test_loads_accepts_what_is_valid():
    assert loads('["\\ud83d\\ude00", "\\\\ud800", "\\\\\\\\ud800"]') == ["\U0001F600", "\\ud800", "\\\\ud800"]
    assert loads("\ufeff[1]") == [1]
    assert loads(b"\xef\xbb\xbf{\"a\": 1}") == {"a": 1}
    assert loads(" \t\r\n[1]\n") == [1]
    with pytest.raises(FormatError, match="invalid UTF-8 at byte 1"):
        loads(b"[\xff]")


def test_object_pairs_hook():
    assert json.loads('{"b": 1, "a": {"$set": 2}}', object_pairs_hook=object_pairs_hook) == {
        "b": 1, "a": {"$set": 2}}  # no tag decoding
    with pytest.raises(FormatError, match="duplicate key 'x'"):
        json.loads('{"x": 1, "y": 2, "x": 3}', object_pairs_hook=object_pairs_hook)


# --- dumps -------------------------------------------------------------------------

def test_dumps_options():
    value = {"é": [1, (2,)]}
    assert dumps(value) == '{"é":[1,{"$tuple":[2]}]}'  # compact, not ASCII-escaped
    assert dumps(value, indent=2) == json.dumps(encode(value), indent=2, ensure_ascii=False)
    assert json.loads(dumps(value, indent=2)) == encode(value)
    with pytest.raises(ValueError):
        dumps(1, style="fancy")


def test_dumps_never_writes_nan_or_unencodable_text():
    value = [math.nan, {"x": -math.inf}, "\ud800", {"\udc00": 1}, complex(math.nan, 0)]
    for style in ("tagged", "plain"):
        text = dumps(value, style=style, changes=collections.Counter())
        text.encode("utf-8")
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text, parse_constant=lambda c: pytest.fail(c))


# --- plain --------------------------------------------------------------------------

def test_plain_conversions_and_counts():
    changes = collections.Counter()
    value = {
        "bytes_text": "héllo".encode(), "bytes_bin": b"\xff\x00", "ba": bytearray(b"x"),
        "tuple": (1, 2), "set": {3, 1, 2}, "fs": frozenset({"b", "a"}), "deque": collections.deque([1]),
        "when": dt.datetime(2024, 2, 29, 13, 45, tzinfo=IST), "day": dt.date(2024, 2, 29), "clock": dt.time(1, 2),
        "span": dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000),
        "neg": dt.timedelta(seconds=-1), "zero": dt.timedelta(0),
        "money": decimal.Decimal("1.50"), "z": complex(1, math.inf), "nan": math.nan, "big": 2**60,
        "keys": {1: "a", None: "b", True: "c", 2.5: "d", "1": "e", (1, 2): "f", b"k": "g"},
        "mongo": {"$set": 1}, "sur": "a\ud800", "od": collections.OrderedDict(a=1),
        "dd": collections.defaultdict(list, a=[1]), "r": range(3), "tz": IST,
    }
    out = plain(value, changes)
    json.dumps(out, allow_nan=False)  # ordinary JSON
    assert out["bytes_text"] == "héllo"
    assert out["bytes_bin"] == base64.b64encode(b"\xff\x00").decode()
    assert out["tuple"] == [1, 2] and out["set"] == [1, 2, 3] and out["fs"] == ["a", "b"] and out["deque"] == [1]
    assert out["when"] == value["when"].isoformat() and out["day"] == "2024-02-29" and out["clock"] == "01:02:00"
    assert out["span"] == "P1DT2H3M4.5S" and out["neg"] == "-PT1S" and out["zero"] == "PT0S"
    assert out["money"] == "1.50" and out["z"] == [1.0, None] and out["nan"] is None and out["big"] == 2**60
    # 1 and True are the same dict key in Python; "1" then collides with the key written for 1
    assert out["keys"] == {"1": "e", "null": "b", "2.5": "d", "(1, 2)": "f", "k": "g"}
    assert out["mongo"] == {"$set": 1} and out["sur"] == "a\ufffd" and out["od"] == {"a": 1}
    assert out["dd"] == {"a": [1]} and out["r"] == "range(0, 3)"
    assert changes == collections.Counter({
        "bytes": 2, "bytearray": 1, "tuple": 1, "set": 1, "frozenset": 1, "deque": 1, "datetime": 1, "date": 1,
        "time": 1, "timedelta": 3, "Decimal": 1, "complex": 1, "float nan/inf": 2, "int beyond 2**53": 1,
        "non-str key": 5, "key collision": 1, "str with lone surrogate": 1, "OrderedDict": 1, "defaultdict": 1,
        "range": 1, "timezone": 1,
    })


def test_plain_leaves_plain_data_alone():
    changes = collections.Counter()
    people = {"Omkar": {"key": "Omkar", "age": 21, "pay": 40000.5, "tags": ["a"], "x": None}}
    assert plain(people, changes) == people
    assert not changes


def test_plain_durations_match_iso_8601_components():
    for td in (dt.timedelta(hours=25), dt.timedelta(minutes=-90), dt.timedelta(microseconds=1)):
        text = plain(td, collections.Counter())
        total = td.total_seconds()
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("-")[1:]
        days = float(body.split("D")[0]) if "D" in body else 0.0
        clock = body.split("T")[1] if "T" in body else ""
        seconds = days * 86400
        for unit, factor in (("H", 3600), ("M", 60), ("S", 1)):
            if unit in clock:
                part, clock = clock.split(unit)
                seconds += float(part) * factor
        assert sign * seconds == pytest.approx(total)


# --- property: anything supported round-trips -----------------------------------

any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=8)
fixed_zones = st.builds(
    lambda minutes, named: dt.timezone(dt.timedelta(minutes=minutes), "Z") if named else
    dt.timezone(dt.timedelta(minutes=minutes)),
    st.integers(-1439, 1439), st.booleans())
hashable = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False), any_text, st.binary(max_size=8), st.dates(),
    st.decimals(allow_nan=False, allow_infinity=True),
    st.datetimes(timezones=st.none() | fixed_zones).map(lambda d: d.replace(fold=d.microsecond % 2)),
    st.times(timezones=st.none() | fixed_zones), st.timedeltas(), st.complex_numbers(allow_nan=False),
)
scalars = st.one_of(hashable, st.floats(), st.decimals(), st.binary().map(bytearray),
                    st.complex_numbers(allow_nan=True))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(any_text, inner, max_size=3), st.dictionaries(st.sampled_from(["$set", "$x", "$"]), inner,
                                                                   max_size=1),
    st.dictionaries(hashable, inner, max_size=3),
    st.lists(inner, max_size=3).map(collections.deque),
    st.dictionaries(hashable, inner, max_size=3).map(collections.OrderedDict),
    st.frozensets(hashable, max_size=4), st.sets(hashable, max_size=4),
    st.frozensets(hashable, max_size=3).map(lambda s: (s, frozenset([s]))),
), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_property_round_trip(value):
    roundtrip(value)
    changes = collections.Counter()
    json.loads(dumps(value, style="plain", changes=changes), object_pairs_hook=object_pairs_hook)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | any_text.filter(lambda s: not jsonencode._has_lone_surrogate(s)),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text.filter(
                        lambda s: not jsonencode._has_lone_surrogate(s)), inner, max_size=4), max_leaves=20),
       st.sampled_from([None, 0, 1, "  "]))
def test_property_iterative_writer_and_parser_match_json(obj, indent):
    separators = (",", ":") if indent is None else (",", ": ")
    expected = json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators)
    assert jsontext._to_text_iterative(obj, indent) == expected
    for text in (expected, json.dumps(obj)):
        value, end = jsontext._raw_decode_iterative(text, 0)
        assert end == len(text)
        assert value == json.loads(text)


# --- other Pythons read what this one writes --------------------------------------

def _standalone_copy(tmp_path):
    """These modules as a tiny package that needs nothing beyond the stdlib."""
    pkg = tmp_path / "converter"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("errors.py", "budget.py", "jsonstream.py"):
        shutil.copy(ROOT / "converter" / name, pkg / name)
    shutil.copytree(ROOT / "converter" / "jsontags", pkg / "jsontags", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.mark.parametrize("python", [
    "/root/.pyenv/versions/3.10.13/bin/python", "/root/.pyenv/versions/3.13.0/bin/python", "/usr/bin/python3"])
def test_other_pythons_read_and_write_the_same_text(python, tmp_path):
    if not Path(python).exists():
        pytest.skip(f"{python} is not installed")
    root = _standalone_copy(tmp_path)
    text = dumps(TAGGED)
    (tmp_path / "in.json").write_text(text, encoding="utf-8")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from converter.jsontags import loads, dumps\n"
        "text = open(sys.argv[2], encoding='utf-8').read()\n"
        "sys.stdout.write(dumps(loads(text)))\n"
    )
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    done = subprocess.run([python, "-c", code, str(root), str(tmp_path / "in.json")], capture_output=True,
                          env=env, text=True, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    assert done.stdout == text
