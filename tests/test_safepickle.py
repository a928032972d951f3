"""Tests for converter.safepickle: the allowlist unpickler, Python 2 pickles, pickle streams.

Malicious pickles are hand-built from opcodes (or made by pickle.dumps of a __reduce__) and
only ever given to the safe loader; each test checks that a marker file was not created.
Python 2 pickles come from tests/fixtures/safepickle/make_py2.py (run with Python 2.7);
when Python 2.7 is installed the script is also run afresh into a temporary folder.
"""

from __future__ import annotations

import collections
import copyreg
import datetime
import io
import os
import pickle
import pickletools
import random
import sqlite3
import struct
import subprocess
import sys
import threading
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest

from converter import safepickle as sp
from converter.errors import ConverterError, FormatError, UnsafePickleError

FIXTURES = Path(__file__).parent / "fixtures" / "safepickle"
PY27 = "/root/.pyenv/versions/2.7.18/bin/python"
DEBIAN_PY = "/usr/bin/python3"


def same(a, b, path="value"):
    """Deep equality that also requires identical types (OrderedDict != dict, str != bytes)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__} ({a!r} vs {b!r})"
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()) or set(a) == set(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            same(k, next(kb for kb in b if kb == k), f"{path} key {k!r}")
            same(a[k], b[k], f"{path}[{k!r}]")
        if isinstance(a, collections.OrderedDict):
            assert list(a) == list(b), f"{path}: order differs"
        if isinstance(a, collections.defaultdict):
            assert a.default_factory is b.default_factory
    elif isinstance(a, (list, tuple, collections.deque)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, (set, frozenset)):
        assert a == b, f"{path}: {a!r} != {b!r}"
        for x in a:
            same(x, next(y for y in b if y == x), f"{path} element")
    else:  # repr too, for NaN
        assert a == b or repr(a) == repr(b), f"{path}: {a!r} != {b!r}"
    if isinstance(a, collections.deque):
        assert a.maxlen == b.maxlen


# --------------------------------------------------------------------------------------
# What make_py2.py wrote, as Python 3 values. `s` turns a Python 2 str (given as its bytes)
# into what the --py2-strings mode makes of it.
# --------------------------------------------------------------------------------------

MODES = {
    "utf8": lambda b: b.decode("utf-8"),
    "latin1": lambda b: b.decode("latin-1"),
    "bytes": lambda b: b,
}


def py2_expected(s):
    return {
        s(b"ascii"): s(b"hello"),
        s(b"utf8_str"): s(b"caf\xc3\xa9"),
        s(b"empty_str"): s(b""),
        s(b"unicode"): "na\xefve \u65e5\u672c",
        s(b"int"): 42,
        s(b"long"): 2 ** 70,
        s(b"small_long"): 5,
        s(b"neg_long"): -(2 ** 65),
        s(b"float"): 0.1,
        s(b"bools"): [True, False, None],
        s(b"datetime"): datetime.datetime(2021, 3, 4, 5, 6, 7, 890123),
        s(b"datetime_old"): datetime.datetime(1900, 1, 1),
        s(b"date"): datetime.date(1999, 12, 31),
        s(b"time"): datetime.time(23, 59, 58, 123456),
        s(b"time_ascii"): datetime.time(1, 2, 3),
        s(b"timedelta"): datetime.timedelta(days=2, seconds=5, microseconds=7),
        s(b"decimal"): Decimal("3.14159"),
        s(b"set"): {s(b"a"), s(b"b")},
        s(b"frozenset"): frozenset([1, 2]),
        s(b"tuple"): (1, s(b"two"), "three"),
        s(b"nested"): {s(b"k\xc3\xa9"): {s(b"inner"): [s(b"x"), (s(b"y"), 2 ** 40)]}},
        s(b"ordered"): collections.OrderedDict([(s(b"z"), 1), (s(b"a"), 2)]),
        s(b"defaultdict"): collections.defaultdict(list, {s(b"d"): [1]}),
        s(b"deque"): collections.deque([s(b"q"), 1]),
        s(b"bytearray"): bytearray(b"\x00\xffab"),
        s(b"xrange"): range(1, 10, 3),
        s(b"complex"): 1 + 2j,
        s(b"shared"): [[1, 2], [1, 2]],
    }


def many_dates(n=300):
    """The same formula as make_py2.many_dates."""
    out = []
    for i in range(n):
        out.append(datetime.datetime(1 + (i * 37) % 9999, 1 + i % 12, 1 + i % 28, i % 24,
                                     (i * 7) % 60, (i * 13) % 60, (i * 104729) % 1000000))
        out.append(datetime.date(1 + (i * 53) % 9999, 1 + (i * 5) % 12, 1 + (i * 3) % 28))
        out.append(datetime.time(i % 24, (i * 11) % 60, (i * 17) % 60, (i * 7919) % 1000000))
    return out


PY2_APPENDED = ["first", {"second": [1, 2]}, "third \u263a", datetime.date(2001, 2, 3), Decimal("-0.5")]

PY3_BYTES_VALUES = {"raw": bytes(range(256)), "empty": b"", "ascii_bytes": b"abc", "text": "caf\xe9",
                    "bytearray": bytearray(b"\x00\x80"), "nested": [(b"k", {b"\xff": "v"})]}

PY2_VALUE_FILES = ["py2_values_p0.pkl", "py2_values_p1.pkl", "py2_values_p2.pkl", "py2_values_pure_p0.pkl"]


def read(name):
    return (FIXTURES / name).read_bytes()


# --------------------------------------------------------------------------------------
# Python 3 data round trips
# --------------------------------------------------------------------------------------

PLAIN = {
    "str": "h\xe9llo \u263a", "bytes": b"\x00\xff\x80abc", "empty_bytes": b"", "int": -(10 ** 30),
    "float": 1.5, "none": None, "bool": True, "list": [1, [2, [3]]], "tuple": (1, ("a", b"b")),
    "set": {1, "x", (2, 3)}, "frozenset": frozenset({b"q"}), "complex": 3 - 4j,
    "bytearray": bytearray(b"\x01\x02"), "range": range(0, 100, 7), "slice": slice(1, None, 2),
    "datetime": datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
    "aware": datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-5), "EST")),
    "utc": datetime.timezone.utc, "date": datetime.date(1, 1, 1), "time": datetime.time(12, 0, 1, 5),
    "tztime": datetime.time(1, tzinfo=datetime.timezone.utc), "timedelta": datetime.timedelta(-1, 5, 6),
    "decimal": Decimal("-1.23E+400"), "nan": Decimal("NaN"),
    "ordered": collections.OrderedDict([("b", 1), ("a", {"c": 2})]),
    "defaultdict": collections.defaultdict(int, {"n": 3}), "dd_set": collections.defaultdict(set),
    "deque": collections.deque([1, "2"], maxlen=5), "dict_keys": {(1, 2): "tuple key", b"k": 1, 3.5: None},
}


@pytest.mark.parametrize("proto", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("mode", sp.PY2_STRING_MODES)
def test_python3_data_round_trips_at_every_protocol(proto, mode):
    data = pickle.dumps(PLAIN, protocol=proto)
    same(sp.loads(data, py2_strings=mode), PLAIN)
    same(sp.loads(data, trust=True, py2_strings=mode), PLAIN)


def test_shared_references_and_cycles_survive():
    shared = [1, 2]
    cyclic = [shared, shared]
    cyclic.append(cyclic)
    holder = {"t": (cyclic,)}
    for proto in range(6):
        out = sp.loads(pickle.dumps(holder, protocol=proto))
        lst = out["t"][0]
        assert lst[0] is lst[1] and lst[2] is lst and lst[0] == [1, 2]


@pytest.mark.parametrize("proto", [0, 1, 2])
def test_python3_bytes_fixtures_stay_bytes_in_every_mode(proto):
    data = read(f"py3_bytes_p{proto}.pkl")
    assert b"_codecs" in data  # really the protocol < 3 form of bytes
    for mode in sp.PY2_STRING_MODES:
        same(sp.loads(data, py2_strings=mode, what=f"py3_bytes_p{proto}.pkl"), PY3_BYTES_VALUES)


def test_python3_bytes_made_now_match_committed_fixtures(tmp_path):
    subprocess.run([sys.executable, str(FIXTURES / "make_py3.py"), str(tmp_path)], check=True)
    for proto in (0, 1, 2):
        same(sp.loads((tmp_path / f"py3_bytes_p{proto}.pkl").read_bytes()), PY3_BYTES_VALUES)


# --------------------------------------------------------------------------------------
# Python 2 pickles
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PY2_VALUE_FILES)
@pytest.mark.parametrize("mode", sp.PY2_STRING_MODES)
def test_python2_values_come_back_as_python3_types(name, mode):
    data = read(name)
    expected = py2_expected(MODES[mode])
    got = sp.loads(data, py2_strings=mode, what=name)
    same(got, expected)
    shared = got[MODES[mode](b"shared")]
    assert shared[0] is shared[1]  # the memo kept the shared reference
    # --trust uses the standard unpickler but still maps Python 2 strings the same way.
    same(sp.loads(data, py2_strings=mode, trust=True), expected)


def test_python2_dates_with_any_packed_state():
    """Packed datetime states are binary: some are valid UTF-8 (with multi-byte sequences
    even), most are not; all must come back exactly, in every mode, at protocol 0 and 2."""
    expected = many_dates()
    states = [d.__reduce__()[1][0] for d in expected]
    assert any(s.isascii() for s in states) and any(not s.isascii() for s in states)
    assert any(not s.isascii() and _is_utf8(s) for s in states)  # the tricky ones
    for mode in sp.PY2_STRING_MODES:
        got = list(sp.iter_pickles(io.BytesIO(read("py2_dates.pkl")), name="py2_dates.pkl", py2_strings=mode))
        assert len(got) == 2
        same(got[0], expected)
        same(got[1], expected)


def _is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_python2_string_that_is_not_utf8():
    data = read("py2_latin1.pkl")
    with pytest.raises(FormatError) as err:
        list(sp.iter_pickles(io.BytesIO(data), name="py2_latin1.pkl"))
    msg = str(err.value)
    assert "py2_latin1.pkl" in msg and "pickle #1" in msg
    assert "--py2-strings latin1" in msg and "--py2-strings bytes" in msg and "\\xe9t\\xe9" in msg
    assert ", record 'name': Python 2 string" in msg  # the record of a pickled dict is named
    with pytest.raises(FormatError, match="--py2-strings latin1"):
        list(sp.iter_pickles(io.BytesIO(data), name="py2_latin1.pkl", trust=True))
    assert list(sp.iter_pickles(io.BytesIO(data), py2_strings="latin1")) == [{"name": "\xe9t\xe9"}] * 3
    assert list(sp.iter_pickles(io.BytesIO(data), py2_strings="bytes")) == [{b"name": b"\xe9t\xe9"}] * 3


def test_python2_appended_pickles():
    got = list(sp.iter_pickles(io.BytesIO(read("py2_appended.pkl")), name="py2_appended.pkl"))
    same(got, PY2_APPENDED)


def test_python2_user_object_is_refused_and_can_be_allowed_by_name():
    data = read("py2_object_p0.pkl")
    assert b"copy_reg\n_reconstructor" in data
    with pytest.raises(UnsafePickleError) as err:
        sp.loads(data, what="record 'p' of old.db")
    msg = str(err.value)
    assert "__main__.Point" in msg and "record 'p' of old.db" in msg
    # a class of the script that wrote the pickle: --allow cannot import it, a script that defines it can
    assert "defined in the script that wrote the pickle" in msg and "allow=['__main__.Point']" in msg


@pytest.mark.skipif(not os.path.exists(PY27), reason="Python 2.7 (pyenv) is not installed")
def test_fixtures_made_afresh_by_python27(tmp_path):
    subprocess.run([PY27, str(FIXTURES / "make_py2.py"), str(tmp_path)], check=True)
    for name in PY2_VALUE_FILES:
        for mode in sp.PY2_STRING_MODES:
            same(sp.loads((tmp_path / name).read_bytes(), py2_strings=mode), py2_expected(MODES[mode]))
    same(list(sp.iter_pickles(open(tmp_path / "py2_appended.pkl", "rb"))), PY2_APPENDED)
    got = list(sp.iter_pickles(open(tmp_path / "py2_dates.pkl", "rb")))
    same(got, [many_dates(), many_dates()])


@pytest.mark.skipif(not os.path.exists(PY27), reason="Python 2.7 (pyenv) is not installed")
def test_python27_random_strings_round_trip(tmp_path):
    """Random Python 2 str/unicode values, written by Python 2.7 with cPickle and pickle."""
    script = r"""
import cPickle, pickle, random, sys
rnd = random.Random(7)
vals = []
for i in range(400):
    n = rnd.randint(0, 12)
    raw = "".join(chr(rnd.randint(0, 255)) for _ in range(n))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raw = u"".join(unichr(rnd.randint(0, 0x2fff)) for _ in range(n)).encode("utf-8")
    vals.append(raw)
    vals.append(u"".join(unichr(rnd.randint(1, 0xd7ff)) for _ in range(n)))
data = {"vals": vals, "keys": dict((v, i) for i, v in enumerate(vals))}
out = open(sys.argv[1], "wb")
for p in (0, 1, 2):
    out.write(cPickle.dumps(data, p))
    out.write(pickle.dumps(data, p))
out.close()
# One value a line: s (str) or u (unicode), then the value's bytes (UTF-8 for unicode) in hex.
lines = [("s " + v.encode("hex")) if isinstance(v, str) else ("u " + v.encode("utf-8").encode("hex"))
         for v in vals]
open(sys.argv[2], "wb").write("\n".join(lines))
"""
    subprocess.run([PY27, "-c", script, str(tmp_path / "r.pkl"), str(tmp_path / "r.txt")], check=True)
    expected = []
    for line in (tmp_path / "r.txt").read_text("ascii").split("\n"):
        kind, _, hexed = line.partition(" ")
        expected.append(bytes.fromhex(hexed).decode("utf-8"))  # every py2 str here is UTF-8
    assert len(expected) == 800
    got = list(sp.iter_pickles(open(tmp_path / "r.pkl", "rb"), name="r.pkl"))
    assert len(got) == 6
    for g in got:
        assert g["vals"] == expected and all(type(x) is str for x in g["vals"])
        assert {k: v for k, v in g["keys"].items()} == {v: i for i, v in enumerate(expected)}
    # The other modes: str values become latin-1 text or bytes; unicode stays str.
    lines = [line.partition(" ") for line in (tmp_path / "r.txt").read_text("ascii").split("\n")]
    for mode, conv in (("latin1", lambda b: b.decode("latin-1")), ("bytes", lambda b: b)):
        want = [conv(bytes.fromhex(h)) if k == "s" else bytes.fromhex(h).decode("utf-8") for k, _, h in lines]
        for g in sp.iter_pickles(open(tmp_path / "r.pkl", "rb"), py2_strings=mode):
            assert g[conv(b"vals")] == want and [type(x) for x in g[conv(b"vals")]] == [type(x) for x in want]


# --------------------------------------------------------------------------------------
# Malicious pickles: nothing may run
# --------------------------------------------------------------------------------------

class _Reduce:
    """An object whose pickle calls func(*args) when loaded (made with pickle.dumps)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _s0(text: str) -> bytes:
    """A protocol-0 STRING argument."""
    return b"S" + repr(text).encode() + b"\n"


def _sbu(text: str) -> bytes:
    """A SHORT_BINUNICODE opcode (protocol 4)."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _bu(text: str) -> bytes:
    """A BINUNICODE opcode."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "marker"
    yield path
    assert not path.exists(), "a malicious pickle ran code"


def _refused(data, *names, what="evil.pkl", **kw):
    with pytest.raises(UnsafePickleError) as err:
        sp.loads(data, what=what, **kw)
    msg = str(err.value)
    for name in names:
        assert name in msg, msg
    assert what in msg
    return msg


@pytest.mark.parametrize("proto", range(6))
def test_os_system_via_reduce_is_refused(proto, marker):
    data = pickle.dumps(_Reduce(os.system, f"touch {marker}"), protocol=proto)
    name = f"{os.system.__module__}.system"  # posix.system on Linux
    msg = _refused(data, name)
    # a global that runs code is never suggested with --allow
    assert "--allow" not in msg and "it can run code or touch files" in msg and "--trust" in msg
    assert sp.pickle_protocol(data) == proto


@pytest.mark.parametrize("func", [eval, exec, getattr, __import__, compile, open])
def test_dangerous_builtins_are_refused(func, marker):
    data = pickle.dumps(_Reduce(func, f"__import__('os').system('touch {marker}')"), protocol=2)
    _refused(data, f"{func.__module__}.{func.__name__}")  # open is io.open


def test_hand_built_globals_are_refused(marker):
    cmd = f"touch {marker}"
    cases = {
        "os.system": b"cos\nsystem\n(" + _s0(cmd) + b"tR.",
        "posix.system": b"cposix\nsystem\n(" + _s0(cmd) + b"tR.",
        "subprocess.Popen": b"\x80\x02csubprocess\nPopen\n((X\x05\x00\x00\x00touch" + _bu(str(marker)) + b"ltR.",
        # Python 2 names reach builtins through the mapping, and are still refused.
        "builtins.eval": b"c__builtin__\neval\n(" + _s0(f"__import__('os').system('{cmd}')") + b"tR.",
        "builtins.getattr": (b"c__builtin__\ngetattr\n(c__builtin__\nstr\nS'join'\ntR."),
        "builtins.apply": b"c__builtin__\napply\n(cos\nsystem\n(" + _s0(cmd) + b"ttR.",
        "functools.reduce": b"c__builtin__\nreduce\n(cos\nsystem\n(" + _s0(cmd) + b"ttR.",
        "builtins.type": b"\x80\x02cbuiltins\ntype\n.",
        "sys.modules": b"\x80\x02csys\nmodules\n.",
        "operator.attrgetter": b"\x80\x02coperator\nattrgetter\n" + _bu("system") + b"\x85R.",
        "importlib.import_module": b"\x80\x02cimportlib\nimport_module\n" + _bu("os") + b"\x85R.",
        # STACK_GLOBAL (protocol 4) with names the base find_class would follow.
        "builtins.getattr.__call__": b"\x80\x04" + _sbu("builtins") + _sbu("getattr.__call__") + b"\x93.",
        "collections.OrderedDict.fromkeys": b"\x80\x04" + _sbu("collections") + _sbu("OrderedDict.fromkeys") + b"\x93.",
        "collections._collections_abc": b"\x80\x04" + _sbu("collections") + _sbu("_collections_abc") + b"\x93.",
        "builtins.__builtins__": b"\x80\x04" + _sbu("builtins") + _sbu("__builtins__") + b"\x93.",
        "builtins.str.join.__globals__": b"\x80\x04" + _sbu("builtins") + _sbu("str.join.__globals__") + b"\x93.",
    }
    for name, data in cases.items():
        _refused(data, name)


def test_ext_opcodes_are_refused_even_with_a_warm_extension_cache(marker):
    # One (module, name) per code: copyreg allows one code for each.
    codes = {0x7E: (b"\x82\x7e", "posix", "system"), 0x1234: (b"\x83\x34\x12", "os", "system"),
             0x7FFF0000: (b"\x84\x00\x00\xff\x7f", "subprocess", "getoutput")}
    call = b"(" + _bu(f"touch {marker}") + b"tR."
    try:
        for code, (op, module, name) in codes.items():
            copyreg.add_extension(module, name, code)
            # Warm the cache the way an earlier trusted load would. This only looks the
            # function up; nothing is called.
            assert callable(pickle.loads(b"\x80\x02" + op + b"."))
            assert code in copyreg._extension_cache
        for code, (op, module, name) in codes.items():
            for allow in ((), [f"{module}.{name}"]):
                msg = _refused(b"\x80\x02" + op + call, "EXT", allow=allow)
                assert "byte 2" in msg
    finally:
        for code, (op, module, name) in codes.items():
            copyreg.remove_extension(module, name, code)
    # Unregistered codes are refused the same way.
    _refused(b"\x80\x02\x82\x01.", "EXT")


def test_persistent_ids_are_refused():
    _refused(b"Pfoo\n.", "persistent ID")
    _refused(b"\x80\x02" + _bu("foo") + b"Q.", "persistent ID")
    with pytest.raises(FormatError):  # --trust has no persistent_load either
        sp.loads(b"Pfoo\n.", trust=True)


def test_build_cannot_change_classes_or_wrappers():
    """BUILD on what find_class returns (classes and the wrapper objects) must fail."""
    targets = [(b"builtins", b"dict"), (b"collections", b"OrderedDict"), (b"datetime", b"datetime"),
               (b"_codecs", b"encode"), (b"copyreg", b"_reconstructor"), (b"builtins", b"object")]
    state_dict = b"}" + _bu("__call__") + b"N" + b"s"
    state_slots = b"N}" + _bu("__defaults__") + b"(" + _bu("x") + b"t" + b"s\x86"
    for module, name in targets:
        for state in (state_dict, state_slots):
            data = b"\x80\x02c" + module + b"\n" + name + b"\n" + state + b"b."
            with pytest.raises(ConverterError):
                sp.loads(data)
    # A Python 2 pickle (STRING opcodes present) gets the datetime wrappers: same rule.
    data = b"cdatetime\ndatetime\n(dS'__call__'\nNsb."
    with pytest.raises(ConverterError):
        sp.loads(data)
    same(sp.loads(pickle.dumps(PLAIN, 2)), PLAIN)  # and nothing was changed for later loads
    same(sp.loads(read("py2_values_p0.pkl")), py2_expected(MODES["utf8"]))


def test_codecs_encode_and_reconstructor_are_restricted():
    _refused(b"\x80\x02c_codecs\nencode\n" + _bu("x") + _bu("rot13") + b"\x86R.", "_codecs.encode")
    _refused(b"\x80\x02c_codecs\nencode\n" + _bu("x") + b"\x85R.", "_codecs.encode")
    assert sp.loads(b"\x80\x02c_codecs\nencode\n" + _bu("\xff") + _bu("latin-1") + b"\x86R.") == b"\xff"
    # _reconstructor with a class that is not allowed (the wrapper of _codecs.encode)
    recon = b"ccopy_reg\n_reconstructor\n("
    _refused(recon + b"c_codecs\nencode\nc__builtin__\nobject\nNtR.", "_reconstructor")
    _refused(recon + b"c__builtin__\nobject\nc__builtin__\nobject\nNtR.", "_reconstructor")
    # with allowed types it builds plain data
    got = sp.loads(recon + b"ccollections\nOrderedDict\nc__builtin__\ndict\n(dtR.")
    assert type(got) is collections.OrderedDict
    # builtins.object is only a base
    _refused(b"c__builtin__\nobject\n(tR.", "builtins.object")


def test_allow_and_trust_permit_what_the_user_names(tmp_path):
    cwd_pickle = pickle.dumps(_Reduce(os.getcwd), protocol=2)
    name = f"{os.getcwd.__module__}.getcwd"
    _refused(cwd_pickle, name)
    assert sp.loads(cwd_pickle, allow=[name]) == os.getcwd()
    assert sp.loads(cwd_pickle, allow=[tuple(name.split("."))]) == os.getcwd()
    assert sp.loads(cwd_pickle, trust=True) == os.getcwd()
    # A user class at protocol 0 needs copyreg._reconstructor with it as the class.
    point = Point(1, 2)
    for proto in range(6):
        data = pickle.dumps(point, protocol=proto)
        _refused(data, f"{Point.__module__}.Point")
        got = sp.loads(data, allow=[f"{Point.__module__}.Point"])
        assert type(got) is Point and (got.x, got.y) == (1, 2)
    with pytest.raises(ConverterError, match="module.Name"):
        sp.loads(cwd_pickle, allow=["nodot"])
    with pytest.raises(ConverterError, match="cannot import"):
        sp.loads(b"cno_such_module_x\nThing\n.", allow=["no_such_module_x.Thing"])
    with pytest.raises(ConverterError, match="py2-strings"):
        sp.loads(cwd_pickle, py2_strings="utf-16")


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


def test_default_allowlist_is_plain_data_only():
    assert ("builtins", "set") in sp.DEFAULT_ALLOWED
    assert ("copyreg", "_reconstructor") in sp.DEFAULT_ALLOWED
    assert ("_codecs", "encode") in sp.DEFAULT_ALLOWED
    assert ("datetime", "datetime") in sp.DEFAULT_ALLOWED and ("decimal", "Decimal") in sp.DEFAULT_ALLOWED
    for module, name in sp.DEFAULT_ALLOWED:
        assert "." not in name
        # zoneinfo.ZoneInfo only as ZoneInfo(key), which reads the system's time-zone data
        assert module in {"builtins", "copyreg", "_codecs", "datetime", "decimal", "collections", "zoneinfo"}
        assert name not in {"eval", "exec", "compile", "__import__", "type", "open", "apply",
                            "setattr", "globals", "vars", "input", "breakpoint"}
    # getattr only as the standard pickler writes a time zone: getattr(zoneinfo.ZoneInfo, "_unpickle")
    assert type(sp.loads(pickle.dumps(zoneinfo.ZoneInfo("UTC"), protocol=2))) is zoneinfo.ZoneInfo
    for target, attr in ((zoneinfo.ZoneInfo, "no_cache"), (Decimal, "__subclasses__"), (set, "__init__")):
        data = pickle.dumps(_Reduce(getattr, target, attr), protocol=2)
        with pytest.raises(UnsafePickleError, match=r"refused builtins.getattr"):
            sp.loads(data)


# --------------------------------------------------------------------------------------
# Corrupt input: only ConverterError subclasses may escape
# --------------------------------------------------------------------------------------

def test_garbage_and_trailing_bytes():
    for junk in [b"", b"hello world", b"{\"a\": 1}", b"\x80\x09N.", b"\x00\x01", b"(dp0\n",
                 b"\x80\x02]q\x00(K\x01e", b"I12x\n.", b"\x80\x02h\x05.", b"\x80\x04\x95" + b"\xff" * 8,
                 b"\x80\x02K\x01K\x02\x86R.", b"\x80\x05\x97."]:
        with pytest.raises(FormatError) as err:
            sp.loads(junk, what="junk.pkl")
        assert "junk.pkl" in str(err.value)
    with pytest.raises(FormatError, match="unexpected bytes after"):
        sp.loads(pickle.dumps(1) + b"xx")


def test_huge_memo_index_is_refused_quickly():
    with pytest.raises(FormatError, match="memo index"):
        sp.loads(b"\x80\x02Nr\xf0\xff\xff\x7f.")
    with pytest.raises(FormatError, match="memo index"):
        sp.loads(b"Np999999999999\n.")


def test_deeply_nested_data_loads_without_recursion_error():
    depth = 200_000
    data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    obj = sp.loads(data)
    for _ in range(depth - 1):
        assert len(obj) == 1
        obj = obj[0]
    assert obj == []
    # A Python 2 pickle (STRING present) that is deep too.
    data = b"S'x'\n" + b"(" * 5000 + b"t" * 5000 + b"."
    assert type(sp.loads(data)) is tuple


def test_random_corruptions_raise_only_converter_errors():
    rnd = random.Random(1234)
    sources = [pickle.dumps(PLAIN, p) for p in range(6)] + [read(n) for n in PY2_VALUE_FILES]
    for _ in range(1500):
        data = bytearray(rnd.choice(sources))
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(len(data))
            action = rnd.random()
            if action < 0.5:
                data[i] = rnd.randrange(256)
            elif action < 0.75:
                del data[i:i + rnd.randint(1, 8)]
            else:
                data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 4)))
        for mode in ("utf8", "bytes"):
            try:
                sp.loads(bytes(data), py2_strings=mode)
            except ConverterError:
                pass


# --------------------------------------------------------------------------------------
# Streams of pickles
# --------------------------------------------------------------------------------------

STREAM_OBJS = [{"a": 1}, "x" * 300, [b"\x00" * 10, 2.5], None, (1, 2), {"k": list(range(50))}]


def _stream():
    parts = [pickle.dumps(o, protocol=p) for p, o in zip([0, 1, 2, 3, 4, 5], STREAM_OBJS)]
    return parts, b"".join(parts)


def test_iter_pickles_basic_cases():
    parts, data = _stream()
    assert list(sp.iter_pickles(io.BytesIO(data))) == STREAM_OBJS
    assert list(sp.iter_pickles(io.BytesIO(parts[2]))) == [STREAM_OBJS[2]]
    assert list(sp.iter_pickles(io.BytesIO(b""))) == []


def test_iter_pickles_on_files_appended_with_ab(tmp_path):
    path = tmp_path / "log.pkl"
    for proto, obj in zip(range(6), STREAM_OBJS):
        with open(path, "ab") as f:
            pickle.dump(obj, f, protocol=proto)
    with open(path, "rb") as f:
        assert list(sp.iter_pickles(f, name=str(path))) == STREAM_OBJS


def test_iter_pickles_every_cut_point():
    parts, data = _stream()
    bounds = {0}
    for p in parts:
        bounds.add(max(bounds) + len(p))
    for cut in range(len(data) + 1):
        complete = [i for i, b in enumerate(sorted(bounds)[1:]) if b <= cut]
        got = []
        if cut in bounds:
            got = list(sp.iter_pickles(io.BytesIO(data[:cut]), name="cut.pkl"))
            assert got == STREAM_OBJS[:len(complete)]
            continue
        with pytest.raises(FormatError) as err:
            for obj in sp.iter_pickles(io.BytesIO(data[:cut]), name="cut.pkl"):
                got.append(obj)
        assert got == STREAM_OBJS[:len(complete)]
        msg = str(err.value)
        start = max(b for b in bounds if b <= cut)
        assert f"pickle #{len(complete) + 1} of cut.pkl at byte {start}" in msg, msg
        assert "truncated" in msg


def test_iter_pickles_trailing_garbage():
    parts, data = _stream()
    for junk in [b"garbage", b"\n", b"\x00", b"N", b"(", b"}q\x00"]:
        got = []
        with pytest.raises(FormatError) as err:
            for obj in sp.iter_pickles(io.BytesIO(data + junk), name="g.pkl"):
                got.append(obj)
        assert got == STREAM_OBJS
        assert f"pickle #{len(parts) + 1} of g.pkl at byte {len(data)}" in str(err.value)


class _RawNoSeek(io.RawIOBase):
    """A raw stream that cannot seek and returns short reads, like a pipe."""

    def __init__(self, data, step=7):
        self.data, self.pos, self.step = data, 0, step

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, b):
        n = min(len(b), self.step, len(self.data) - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def test_iter_pickles_on_non_seekable_streams():
    parts, data = _stream()
    assert list(sp.iter_pickles(io.BufferedReader(_RawNoSeek(data)), name="s")) == STREAM_OBJS
    assert list(sp.iter_pickles(_RawNoSeek(data), name="s")) == STREAM_OBJS
    with pytest.raises(FormatError, match="pickle #6 of s"):
        list(sp.iter_pickles(_RawNoSeek(data[:-3]), name="s"))
    # A real pipe, written by another thread in pieces.
    r, w = os.pipe()

    def writer():
        with os.fdopen(w, "wb") as f:
            for p in parts:
                f.write(p[:5])
                f.flush()
                f.write(p[5:])

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, "rb") as f:
        assert list(sp.iter_pickles(f, name="<stdin>")) == STREAM_OBJS
    t.join()


def test_load_leaves_the_file_after_each_stop():
    parts, data = _stream()
    f = io.BytesIO(data + b"tail")
    pos = 0
    for p, obj in zip(parts, STREAM_OBJS):
        assert sp.load(f) == obj
        pos += len(p)
        assert f.tell() == pos
    assert f.read() == b"tail"
    # Non-seekable: reads nothing past the STOP.
    raw = _RawNoSeek(data + b"tail", step=3)
    for obj in STREAM_OBJS:
        assert sp.load(raw, what="pipe") == obj
    assert raw.read() == b"tail"
    buffered = io.BufferedReader(_RawNoSeek(data + b"tail"))
    for obj in STREAM_OBJS:
        assert sp.load(buffered) == obj
    assert buffered.read() == b"tail"

    class ReadOnly:  # has read() and nothing else: lines come a byte at a time
        def __init__(self, data):
            self.f = io.BytesIO(data)

        def read(self, n):
            return self.f.read(n)

    plain = ReadOnly(data + b"tail")
    for obj in STREAM_OBJS:
        assert sp.load(plain) == obj
    assert plain.read(10) == b"tail"
    with pytest.raises(FormatError, match="empty"):
        sp.load(io.BytesIO(b""), what="e.pkl")
    # A bad pickle leaves a seekable file where it was.
    f = io.BytesIO(b"junk junk")
    with pytest.raises(FormatError):
        sp.load(f)
    assert f.tell() == 0


def test_load_and_iter_on_a_big_pickle():
    big = {"rows": [{"id": i, "name": f"n{i}", "blob": bytes([i % 256]) * (i % 50)} for i in range(20000)]}
    for proto in (0, 2, 5):
        data = pickle.dumps(big, protocol=proto)
        assert sp.load(io.BytesIO(data)) == big
        assert list(sp.iter_pickles(io.BufferedReader(_RawNoSeek(data * 2, step=65536)))) == [big, big]


# --------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------

def test_pickle_protocol_of_real_pickles():
    for proto in range(6):
        for obj in (PLAIN, [1], "s", None, b"b", 5, (), {}):
            data = pickle.dumps(obj, protocol=proto)
            expected = proto
            if proto == 1 and all(op.proto == 0 for op, _, _ in pickletools.genops(data)):
                expected = 0  # e.g. None is b"N." at protocols 0 and 1 alike
            assert sp.pickle_protocol(data) == expected
            # A short head of a protocol 1 pickle may show only protocol 0 opcodes so far.
            assert sp.pickle_protocol(data[:16]) in ({0, 1} if proto == 1 else {proto}), (proto, data[:16])
    for name, proto in [("py2_values_p0.pkl", 0), ("py2_values_pure_p0.pkl", 0), ("py2_values_p1.pkl", 1),
                        ("py2_values_p2.pkl", 2), ("py3_bytes_p0.pkl", 0), ("py3_bytes_p1.pkl", 1),
                        ("py2_object_p0.pkl", 0)]:
        assert sp.pickle_protocol(read(name)[:64]) == proto, name
    assert sp.pickle_protocol(b"(lp0\n") == 0
    assert sp.pickle_protocol(b"S'abc'\np0\n.") == 0
    assert sp.pickle_protocol(b"I42\n.") == 0
    assert sp.pickle_protocol(b"(i__main__\nX\n") == 0


def test_pickle_protocol_rejects_other_formats(tmp_path):
    samples = [
        b"", b"\x80", b"\x80\x06}", b"\x80\x01N.", b'{"a": 1, "b": [1, 2]}', b'[1, 2, 3]\n', b'"text"',
        b"123\n456\n", b"true", b"null", b'{"a": 1}\n{"a": 2}\n', b"Hello world\n", b"hello world\n",
        b"Note: something", b"# comment\nkey = value\n", b"<?xml version='1.0'?>", b"id,name\n1,x\n",
        b"SQLite format 3\x00", b"\xef\xbb\xbf{}", b"'key', (0, 12)\n",
        struct.pack("<I", 0x13579ACE) + b"\x00" * 12, struct.pack(">I", 0x13579ACD) + b"\x00" * 12,
        struct.pack("<I", 0x13579ACF) + b"\x00" * 12, struct.pack("<I", 0x13579AD1) + b"\x00" * 12,
        b"\x00" * 12 + struct.pack("<I", 0x061561), struct.pack(">I", 0x061561) + b"\x00\x00\x00\x02",
        b"I am a line of text\n", b"Lorem ipsum dolor sit amet", b"(1) first item\n",
    ]
    db = tmp_path / "x.sqlite"
    con = sqlite3.connect(db)
    con.execute("create table t (k, v)")
    con.commit()
    con.close()
    samples.append(db.read_bytes()[:64])
    samples.append(Path(__file__).read_bytes()[:64])
    samples.append(Path(sp.__file__).read_bytes()[:64])
    for head in samples:
        assert sp.pickle_protocol(head) is None, head


@pytest.mark.skipif(not os.path.exists(DEBIAN_PY), reason="Debian's python3 is not installed")
def test_pickle_protocol_rejects_real_gdbm_and_bdb_files(tmp_path):
    script = r"""
import sys
made = []
try:
    import dbm.gnu
    d = dbm.gnu.open(sys.argv[1] + "/g.gdbm", "c"); d[b"k"] = b"v"; d.close(); made.append("g.gdbm")
except ImportError:
    pass
try:
    import bsddb3
    for kind, name in ((bsddb3.hashopen, "h.db"), (bsddb3.btopen, "b.db")):
        d = kind(sys.argv[1] + "/" + name, "c"); d[b"k"] = b"v"; d.close(); made.append(name)
except ImportError:
    pass
print(" ".join(made))
"""
    out = subprocess.run([DEBIAN_PY, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    made = out.stdout.split()
    if not made:
        pytest.skip("neither dbm.gnu nor bsddb3 is available to Debian's python3")
    for name in made:
        assert sp.pickle_protocol((tmp_path / name).read_bytes()[:64]) is None, name


def test_non_utf8_python2_str_given_to_a_constructor_names_the_string():
    data = b"cdecimal\nDecimal\n(S'\\xb11'\ntR."
    with pytest.raises(FormatError, match="is not UTF-8.*--py2-strings latin1"):
        sp.loads(data, what="rec")
    with pytest.raises(FormatError, match="corrupt pickle"):  # '±1' is no number either way
        sp.loads(data, what="rec", py2_strings="latin1")


def test_a_non_utf8_python2_str_deep_in_a_record_names_the_record_and_outside_a_dict_none():
    nested = b"(dp0\nS'ok'\np1\nI1\nsS'deep'\np2\n(lp3\nI1\na(S'\\xe9'\ntp4\nas."
    with pytest.raises(FormatError, match=r", record 'deep': Python 2 string b'\\xe9' is not UTF-8"):
        sp.loads(nested, what="p.pkl")
    with pytest.raises(FormatError) as err:
        sp.loads(b"(lp0\nS'\\xe9'\na.", what="p.pkl")
    assert "record" not in str(err.value) and "is not UTF-8" in str(err.value)


def test_allow_accepts_any_iterable():
    data = pickle.dumps(_Reduce(os.getcwd), protocol=2)
    name = f"{os.getcwd.__module__}.getcwd"
    assert sp.loads(data, allow=(n for n in [name])) == os.getcwd()
    assert sp.loads(data, allow=[[os.getcwd.__module__, "getcwd"]]) == os.getcwd()


def test_allowing_a_default_name_keeps_python2_handling():
    got = sp.loads(read("py2_values_p2.pkl"), allow=["datetime.datetime", "decimal.Decimal"])
    same(got, py2_expected(MODES["utf8"]))
    # ...but --allow _codecs.encode lifts its restriction, as the message says.
    data = b"\x80\x02c_codecs\nencode\n" + _bu("x") + _bu("rot13") + b"\x86R."
    assert sp.loads(data, allow=["_codecs.encode"]) == "k"


def test_pickle_length():
    parts, data = _stream()
    assert sp.pickle_length(data) == len(parts[0])
    assert sp.pickle_length(data, len(parts[0])) == len(parts[1])
    for name in PY2_VALUE_FILES:  # non-ASCII Python 2 strings do not matter
        raw = read(name)
        assert sp.pickle_length(raw) == len(raw)
    assert sp.pickle_length(parts[3][:-1]) is None
    assert sp.pickle_length(b"hello") is None
    assert sp.pickle_length(b"") is None
