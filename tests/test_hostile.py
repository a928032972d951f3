"""Hostile input, through the real command line: every reader, end to end.

Each case runs ``convert`` (typer's runner in-process, and ``python -m converter`` in a
subprocess where memory or a hang inside C code must be bounded) and checks the promise:
exit status 1, one error line that names the file (or record), no traceback, a time limit,
nothing executed (marker files), nothing left in the output directory, and the input
byte-identical afterwards. Inputs are made here by hand (the bytes of a malicious pickle) or
from the real fixtures (tests/fixtures, made by the real software), damaged on purpose.
"""

from __future__ import annotations

import contextlib
import dbm.dumb
import os
import pickle
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from converter.cli import app

FIX = Path(__file__).parent / "fixtures"
EXAMPLE = Path(__file__).parent.parent / "examples" / "people.pkl"
DEBIAN_PY = "/usr/bin/python3"
runner = CliRunner()


# -- the harness ----------------------------------------------------------------------------

class Hang(BaseException):
    """Raised by the alarm (BaseException: the CLI's catch-all for Exception cannot swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


class World:
    """An input directory and an empty output directory; checks what a refusal must leave."""

    def __init__(self, tmp_path: Path):
        self.inp = tmp_path / "in"
        self.out = tmp_path / "out"
        self.inp.mkdir()
        self.out.mkdir()
        self.marker = tmp_path / "EXECUTED"

    def convert(self, src, dst_name, *args, seconds=20):
        before = snapshot(self.inp)
        with time_limit(seconds):
            result = runner.invoke(app, [str(src), str(self.out / dst_name), *map(str, args)])
        assert snapshot(self.inp) == before, "the input directory changed"
        assert not self.marker.exists(), "the input ran code"
        return result

    def refused(self, src, dst_name, *args, names=None, words=(), seconds=20):
        """Convert and check the refusal: exit 1, one clean line naming ``names``, nothing left."""
        r = self.convert(src, dst_name, *args, seconds=seconds)
        assert_refusal(r.exit_code, r.stderr, names if names is not None else [Path(src).name], words,
                       detail=r.exception)
        assert list(self.out.iterdir()) == [], f"left behind: {list(self.out.iterdir())}"
        return r.stderr


def assert_refusal(code, stderr, names, words=(), detail=None):
    errors = [line for line in stderr.splitlines() if line.startswith("convert: error:")]
    assert code == 1, f"exit {code}: {stderr!r} {detail!r}"
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    for name in names:
        assert name in errors[0], f"{name!r} not in {errors[0]!r}"
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def run_subprocess(args, *, seconds=60, memory_mb=None, cwd=None, stdin=subprocess.DEVNULL):
    """``python -m converter ARGS`` in a child, optionally with its address space limited."""
    def limit():
        if memory_mb:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))

    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          timeout=seconds, preexec_fn=limit, cwd=cwd, stdin=stdin,
                          env={**os.environ, "CONVERTER_LOAD_PLUGINS": ""})
    return proc, time.monotonic() - started


# -- malicious pickles ------------------------------------------------------------------------
#
# Each payload, if unpickled by pickle.loads, creates the marker file (most through a shell
# command): the test fails if the marker appears. The bytes are written out opcode by opcode.

def _u(text: str) -> bytes:  # SHORT_BINUNICODE
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def _x(text: str) -> bytes:  # BINUNICODE
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def payloads(marker: Path) -> dict[str, bytes]:
    cmd = f"touch {marker}"
    q = cmd.encode()
    return {
        "os.system via REDUCE (protocol 0)": b"cos\nsystem\n(S'" + q + b"'\ntR.",
        "posix.system via REDUCE (protocol 2)": b"\x80\x02cposix\nsystem\nq\x00" + _x(cmd) + b"\x85R.",
        "os.system via STACK_GLOBAL (protocol 4)":
            b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00" + _u("os") + _u("system") + b"\x93" + _u(cmd) + b"\x85R.",
        "eval from __builtin__ (protocol 0)":
            b"c__builtin__\neval\n(S'__import__(\"os\").system(\"" + q + b"\")'\ntR.",
        "exec from builtins (protocol 2)":
            b"\x80\x02cbuiltins\nexec\n" + _x(f"import os; os.system({cmd!r})") + b"\x85R.",
        "open() from __builtin__ creates a file":
            b"c__builtin__\nopen\n(S'" + str(marker).encode() + b"'\nS'w'\ntR.",
        "getattr chain to os.system":
            b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'" + q + b"'\ntR.",
        "dotted name os.path.os.system (protocol 4)":
            b"\x80\x04" + _u("os") + _u("path.os.system") + b"\x93" + _u(cmd) + b"\x85R.",
        "INST opcode": b"(S'" + q + b"'\nios\nsystem\n.",
        "OBJ opcode": b"(cos\nsystem\nS'" + q + b"'\no.",
        "NEWOBJ of subprocess.Popen": b"\x80\x02csubprocess\nPopen\n" + _x(cmd) + b"\x85\x85\x81.",
        "copy_reg._reconstructor of os.system":
            b"ccopy_reg\n_reconstructor\n(cos\nsystem\nc__builtin__\nobject\nNtR.",
        "EXT1 opcode": b"\x80\x02\x82\x01" + _x(cmd) + b"\x85R.",
        "EXT4 opcode": b"\x80\x02\x84\x00\x00\x01\x00" + _x(cmd) + b"\x85R.",
        "PERSID opcode": b"P" + q + b"\n.",
        "BINPERSID opcode": b"\x80\x02" + _x(cmd) + b"Q.",
        "BUILD on an allowed class": b"\x80\x02c__builtin__\nset\n}" + _x("__init__") + b"K\x01sb.",
        "BUILD on the _reconstructor stand-in":
            b"ccopy_reg\n_reconstructor\np0\n(dp1\nS'__call__'\np2\ncos\nsystem\np3\nsb"
            b"(c__builtin__\nobject\ng0\nNtR.",
        "operator.attrgetter": b"\x80\x02coperator\nattrgetter\n" + _x("system") + b"\x85R.",
        "functools.partial": b"\x80\x02cfunctools\npartial\ncos\nsystem\n" + _x(cmd) + b"\x86R.",
        "sys.modules": b"\x80\x02csys\nmodules\n.",
    }


PAYLOAD_NAMES = list(payloads(Path("/x")))


@pytest.mark.parametrize("case", PAYLOAD_NAMES)
def test_malicious_pickle_file_runs_nothing(world, case):
    src = world.inp / "evil.pkl"
    src.write_bytes(payloads(world.marker)[case])
    err = world.refused(src, "out.json", "--from", "pickle")
    assert any(w in err for w in ("refused", "persistent", "not a valid pickle", "corrupt")), err


@pytest.mark.parametrize("case", ["os.system via REDUCE (protocol 0)", "getattr chain to os.system",
                                  "os.system via STACK_GLOBAL (protocol 4)", "EXT1 opcode"])
@pytest.mark.parametrize("out", ["out.pkl", "out.sqlite", "out.jsonl", "outdb"])
def test_malicious_pickle_to_every_kind_of_sink(world, case, out):
    src = world.inp / "evil.pkl"
    src.write_bytes(payloads(world.marker)[case])
    extra = ["--to", "dbm.dumb"] if out == "outdb" else []
    world.refused(src, out, *extra, words=["refused"])


def test_malicious_pickle_after_good_ones_leaves_no_output(world):
    src = world.inp / "appended.pkl"
    src.write_bytes(pickle.dumps({"a": 1}, 2) + pickle.dumps({"b": 2}, 2) + payloads(world.marker)["INST opcode"])
    world.refused(src, "out.json", names=["appended.pkl", "pickle #3"], words=["refused"])


# The same payloads as the values of a store: shelve (dbm.dumb, as Python 2 wrote them),
# Python 3.13's dbm.sqlite3, a sqlitedict table, and (with Debian's modules) gdbm and
# Berkeley DB files written by the C libraries.

STORE_CASES = ["os.system via REDUCE (protocol 0)", "getattr chain to os.system", "eval from __builtin__ (protocol 0)",
               "os.system via STACK_GLOBAL (protocol 4)", "EXT1 opcode", "BINPERSID opcode", "INST opcode"]


def _good_values():
    return {b"alpha": pickle.dumps({"fine": 1}, 2), b"beta": pickle.dumps([1, 2, 3], 0)}


def make_dumb_shelve(base: Path, evil: bytes):
    db = dbm.dumb.open(str(base), "n")
    for k, v in _good_values().items():
        db[k] = v
    db[b"evil"] = evil
    db.close()
    return base


def make_dbm_sqlite3(path: Path, evil: bytes):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE Dict (key BLOB UNIQUE NOT NULL, value BLOB NOT NULL)")
    con.executemany("INSERT INTO Dict VALUES (?, ?)", [*_good_values().items(), (b"evil", evil)])
    con.commit()
    con.close()
    return path


def make_sqlitedict(path: Path, evil: bytes):
    con = sqlite3.connect(path)
    con.execute('CREATE TABLE "unnamed" (key TEXT PRIMARY KEY, value BLOB)')
    con.executemany('INSERT INTO "unnamed" VALUES (?, ?)',
                    [(k.decode(), v) for k, v in _good_values().items()] + [("evil", evil)])
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("case", STORE_CASES)
@pytest.mark.parametrize("store", ["shelve", "dbm.sqlite3", "sqlitedict"])
def test_malicious_values_in_stores_run_nothing(world, case, store):
    evil = payloads(world.marker)[case]
    if store == "shelve":
        src = make_dumb_shelve(world.inp / "shelf", evil)
        args = ["--from", "shelve"]
    elif store == "dbm.sqlite3":
        src = make_dbm_sqlite3(world.inp / "store.sqlite3", evil)
        args = []
    else:
        src = make_sqlitedict(world.inp / "dict.sqlite", evil)
        args = []
    err = world.refused(src, "out.json", *args, names=[src.name, "'evil'"])
    assert any(w in err for w in ("refused", "persistent")), err


@pytest.mark.skipif(not Path(DEBIAN_PY).exists(), reason="needs Debian's python3 with dbm.gnu and bsddb3")
@pytest.mark.parametrize("kind", ["dbm.gnu", "berkeleydb"])
def test_malicious_values_in_c_library_files_run_nothing(world, kind):
    evil = payloads(world.marker)["os.system via REDUCE (protocol 0)"]
    src = world.inp / ("evil.gdbm" if kind == "dbm.gnu" else "evil.db")
    code = ("import sys, dbm.gnu as g; db = g.open(sys.argv[1], 'n')" if kind == "dbm.gnu" else
            "import sys, bsddb3; db = bsddb3.hashopen(sys.argv[1], 'n')")
    code += "; db[b'good'] = bytes.fromhex(sys.argv[2]); db[b'evil'] = bytes.fromhex(sys.argv[3]); db.close()"
    made = subprocess.run([DEBIAN_PY, "-c", code, str(src), pickle.dumps("fine", 2).hex(), evil.hex()],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"Debian's python3 could not write {kind}: {made.stderr.strip()[-200:]}")
    world.refused(src, "out.json", "--value-codec", "pickle", names=[src.name, "evil"], words=["refused"])


def test_malicious_pickle_through_a_real_subprocess(world):
    src = world.inp / "evil.pkl"
    src.write_bytes(payloads(world.marker)["os.system via REDUCE (protocol 0)"])
    before = snapshot(world.inp)
    proc, took = run_subprocess([src, world.out / "out.json"], seconds=60)
    assert_refusal(proc.returncode, proc.stderr, ["evil.pkl"], ["refused", "os.system"])
    assert snapshot(world.inp) == before and not world.marker.exists()
    assert list(world.out.iterdir()) == []


# -- dbm.dumb indexes that are code -------------------------------------------------------------

DIR_LINES = {
    "a call": "__import__('os').system('touch {m}'), (0, 1)",
    "a call as the key": "(__import__('os').system('touch {m}'), (0, 1))",
    "a call as the position": "('k', (__import__('os').system('touch {m}'), 1))",
    "a lambda": "((lambda: __import__('os').system('touch {m}'))(), (0, 1))",
    "an f-string": "(f\"{{__import__('os').system('touch {m}')}}\", (0, 1))",
    "a comprehension": "([__import__('os').system('touch {m}') for _ in '1'], (0, 1))",
    "attribute access": "('k'.__class__, (0, 1))",
    "deep nesting": "(" * 5000 + "'k', (0, 1)" + ")" * 5000,
    "a negative position": "'k', (-5, 1)",
    "a position past the end": "'k', (10**15, 1)",
    "a size past the end": "'k', (0, 10**12)",
    "a float position": "'k', (0.5, 1)",
    "not a pair": "'k', (0, 1, 2)",
}


@pytest.mark.parametrize("case", list(DIR_LINES))
def test_dbm_dumb_index_lines_are_never_run(world, case):
    base = world.inp / "db"
    (world.inp / "db.dat").write_bytes(b"value" * 10)
    line = DIR_LINES[case].format(m=world.marker)
    (world.inp / "db.dir").write_text("'good', (0, 5)\n" + line + "\n", encoding="latin-1")
    world.refused(base, "out.json", "--from", "dbm.dumb", names=["db."])


def test_dbm_dumb_index_of_code_is_not_detected_as_dbm_dumb(world):
    (world.inp / "db.dat").write_bytes(b"")
    (world.inp / "db.dir").write_text(f"__import__('os').system('touch {world.marker}'), (0, 1)\n")
    world.refused(world.inp / "db", "out.json", names=["db"])


# -- truncation at many cut points, of every format ------------------------------------------------

TRUNCATED = [  # (format, fixture, the file to cut within a store, extra args)
    ("pickle", "py2/py2_proto0.pkl", None, []),
    ("pickle", "py2/py2_proto2.pkl", None, []),
    ("pickle", "safepickle/py3_bytes_p2.pkl", None, []),
    ("json", None, None, []),
    ("jsonl", None, None, []),
    ("dbm.dumb", "py313/dbm_dumb", ".dat", []),
    ("dbm.dumb", "py313/dbm_dumb", ".dir", []),
    ("shelve", "py2/py2_dumbdbm_shelve", ".dat", []),
    ("dbm.sqlite3", "py313/dbm_sqlite3.sqlite", None, []),
    ("sqlite", "py313/sqlite_people.sqlite", None, []),
    ("sqlite", "py313/sqlitedict_style.sqlite", None, []),
    ("dbm.gnu", "gdbm/std.db", None, ["--key-codec", "raw"]),
    ("dbm.gnu", "debian/gdbm_shelve.gdbm", None, []),
    ("dbm.ndbm", "gdbm/compat", ".pag", []),
    ("dbm.ndbm", "debian/ndbm_small", ".db", []),
    ("berkeleydb", "bdb/hash.db", None, []),
    ("berkeleydb", "bdb/btree_be_chksum.db", None, []),
    ("berkeleydb", "bdb/hash185.db", None, []),
    ("gdbm-dump", "gdbm/std.dump", None, ["--key-codec", "raw"]),
    ("gdbm-dump", "gdbm/small512.bin", None, ["--key-codec", "raw"]),
    ("db_dump", "bdb/dump_print.txt", None, []),
]


def _json_source(world, fmt):
    """A JSON or JSON Lines file written by this tool from a fixture with tricky values."""
    src = world.inp / f"data.{fmt}"
    r = runner.invoke(app, [str(FIX / "safepickle" / "py2_values_p2.pkl"), str(src), "-q"])
    assert r.exit_code == 0, r.stderr
    return src


def _cut_points(size, extra=()):
    points = {0, 1, 2, 3, 5, 8, 13, 17, 31, 64, 100, 511, 512, 513, 4095, 4096, 4097,
              size // 3, size // 2, (2 * size) // 3, size - 100, size - 17, size - 3}
    points.update(extra)
    return sorted(p for p in points if 0 <= p < size)


@pytest.mark.parametrize("fmt,fixture,member,args", TRUNCATED,
                         ids=[f"{t[0]}-{(t[1] or 'made').split('/')[-1]}{t[2] or ''}" for t in TRUNCATED])
def test_truncated_anywhere_is_refused_or_read_whole(world, fmt, fixture, member, args):
    """Cut at many points: exit 1 with a clean message, or (where the cut removed only bytes
    that hold nothing, e.g. free space at the end of a page) exactly the full records."""
    if fixture is None:
        src = _json_source(world, fmt)
        target = src
    else:
        for f in sorted((FIX / fixture).parent.glob(Path(fixture).name + "*")):
            shutil.copyfile(f, world.inp / f.name)
        src = world.inp / Path(fixture).name
        target = Path(f"{src}{member}") if member else src
    args = ["--from", fmt, "-q", *args]
    full = world.convert(src, "full.jsonl", *args)
    assert full.exit_code == 0, full.stderr
    whole = (world.out / "full.jsonl").read_bytes()
    (world.out / "full.jsonl").unlink()
    original = target.read_bytes()
    # cut points inside a line (JSON Lines, dbm.dumb's index): a cut at a line's end is a valid shorter file
    lines = original.endswith(b"\n") and fmt == "jsonl" or member == ".dir"
    refused = 0
    for cut in _cut_points(len(original)):
        if lines and (cut == 0 or b"\n" in original[cut - 1:cut + 1]):
            continue  # at a line's end, before or after its newline
        target.write_bytes(original[:cut])
        r = world.convert(src, "out.jsonl", *args)
        if r.exit_code == 0:
            assert (world.out / "out.jsonl").read_bytes() == whole, f"cut at {cut} of {len(original)} gave other records"
            (world.out / "out.jsonl").unlink()
            continue
        assert_refusal(r.exit_code, r.stderr, [target.name if fmt != "dbm.ndbm" else src.name], detail=r.exception)
        assert list(world.out.iterdir()) == []
        refused += 1
    target.write_bytes(original)
    assert refused >= 8


def test_truncated_pickle_is_not_a_clean_end(world):
    """A pickle cut anywhere is an error, never an end of file that gives fewer records; the
    only clean cuts are the boundaries between appended pickles."""
    parts = [pickle.dumps({"a": [1, 2.5, "x"]}, 0), pickle.dumps({"b": {"c": b"\x00"}}, 2),
             pickle.dumps({"d": (1, 2)}, 4)]
    data = b"".join(parts)
    boundaries = {len(parts[0]), len(parts[0]) + len(parts[1])}
    src = world.inp / "three.pkl"
    for cut in range(1, len(data)):
        src.write_bytes(data[:cut])
        r = world.convert(src, "out.json", "-q")
        if cut in boundaries:
            assert r.exit_code == 0, r.stderr
            (world.out / "out.json").unlink()
        else:
            assert_refusal(r.exit_code, r.stderr, ["three.pkl"], ["truncated"], detail=r.exception)


# -- zero-length files ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["pickle", "json", "dbm.gnu", "berkeleydb", "gdbm-dump", "db_dump", "sqlite",
                                 "dbm.sqlite3", "dbm.ndbm"])
def test_zero_length_file_is_refused(world, fmt):
    src = world.inp / ("empty.pag" if fmt == "dbm.ndbm" else "empty")
    src.write_bytes(b"")
    if fmt == "dbm.ndbm":
        (world.inp / "empty.dir").write_bytes(b"")
    world.refused(src, "out.json", "--from", fmt, names=["empty"])
    world.refused(src, "out.json", names=["empty"])  # and detected as nothing, not guessed


@pytest.mark.parametrize("fmt", ["jsonl", "dbm.dumb"])
def test_zero_length_files_that_are_valid_empty_stores(world, fmt):
    """An empty JSON Lines file has no lines; dbm.dumb.open(..., 'n') makes an empty .dat and .dir."""
    if fmt == "jsonl":
        src = world.inp / "empty.jsonl"
        src.write_bytes(b"")
    else:
        src = world.inp / "empty"
        (world.inp / "empty.dat").write_bytes(b"")
        (world.inp / "empty.dir").write_bytes(b"")
    r = world.convert(src, "out.json", "--from", fmt, "-q")
    assert r.exit_code == 0, r.stderr
    assert (world.out / "out.json").read_text().strip() == "{}"


# -- header fields that lie, chains that loop --------------------------------------------------------

def _gdbm_header_dir_past_end(data: bytearray):
    struct.pack_into("<q", data, 8, 1 << 40)  # directory offset


def _gdbm_bucket_elems_huge(data: bytearray):
    struct.pack_into("<i", data, 28, 0x7FFFFFFF)


def _bdb_hash_page_loop(data: bytearray):
    page = next(p for p in range(1, len(data) // 512) if data[p * 512 + 25] == 13)
    struct.pack_into("<I", data, page * 512 + 16, page)  # next page -> itself


def _bdb_btree_leaf_loop(data: bytearray):
    leaves = [p for p in range(1, len(data) // 512) if data[p * 512 + 25] == 5]
    struct.pack_into(">I", data, leaves[-1] * 512 + 16, leaves[0])


def _bdb_meta_past_end(data: bytearray):
    struct.pack_into("<I", data, 96, 0xFFFFFF00)


def _pickle_huge_lengths(kind):
    return {
        "BINUNICODE8 of 2**63 bytes": b"\x80\x04\x8d" + struct.pack("<Q", 2**63) + b"abc.",
        "BINBYTES8 of 2**40 bytes": b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.",
        "FRAME of 2**62 bytes": b"\x80\x04\x95" + struct.pack("<Q", 2**62) + b"N.",
        "LONG4 of 2**31-1 bytes": b"\x80\x02\x8b\xff\xff\xff\x7f\x01.",
        "BINUNICODE of 4 GB": b"\x80\x02X\xff\xff\xff\xff" + b"a" * 100 + b".",
        "memo index 2**32-1": b"\x80\x02]r\xff\xff\xff\xff.",
        "GET of a memo entry never put": b"\x80\x02h\x05.",
        "APPENDS to nothing": b"\x80\x02(K\x01e.",
    }[kind]


LIES = {
    "gdbm directory past the end": ("dbm.gnu", "gdbm/std.db", _gdbm_header_dir_past_end),
    "gdbm bucket element count": ("dbm.gnu", "gdbm/std.db", _gdbm_bucket_elems_huge),
    "Berkeley DB hash page chain loop": ("berkeleydb", "bdb/hash.db", _bdb_hash_page_loop),
    "Berkeley DB btree leaf chain loop": ("berkeleydb", "bdb/btree_be_chksum.db", _bdb_btree_leaf_loop),
    "Berkeley DB meta page past the end": ("berkeleydb", "bdb/hash.db", _bdb_meta_past_end),
}


@pytest.mark.parametrize("case", list(LIES))
def test_lying_headers_and_looping_chains(world, case):
    fmt, fixture, damage = LIES[case]
    data = bytearray((FIX / fixture).read_bytes())
    damage(data)
    src = world.inp / Path(fixture).name
    src.write_bytes(bytes(data))
    t = time.monotonic()
    world.refused(src, "out.json", "--from", fmt, "--key-codec", "raw", seconds=10)
    assert time.monotonic() - t < 5


@pytest.mark.parametrize("kind", ["BINUNICODE8 of 2**63 bytes", "BINBYTES8 of 2**40 bytes", "FRAME of 2**62 bytes",
                                  "LONG4 of 2**31-1 bytes", "BINUNICODE of 4 GB", "memo index 2**32-1",
                                  "GET of a memo entry never put", "APPENDS to nothing"])
def test_pickle_opcodes_claiming_huge_sizes(world, kind):
    src = world.inp / "huge.pkl"
    src.write_bytes(_pickle_huge_lengths(kind))
    world.refused(src, "out.json", "--from", "pickle", seconds=10)


def test_huge_claimed_length_from_a_pipe_is_bounded(world):
    data = _pickle_huge_lengths("BINUNICODE8 of 2**63 bytes")
    proc = subprocess.run([sys.executable, "-c", (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20));"
        "from converter.cli import main; sys.argv = ['convert', '-', sys.argv[1], '--from', 'pickle']; main()"),
        str(world.out / "out.json")], input=data, capture_output=True, timeout=60,
        env={**os.environ, "CONVERTER_LOAD_PLUGINS": ""})
    assert_refusal(proc.returncode, proc.stderr.decode(), ["-"], ["truncated"])
    assert list(world.out.iterdir()) == []


# -- JSON ----------------------------------------------------------------------------------------------

JSON_BAD = {
    "NaN": b'{"a": NaN}',
    "Infinity": b'{"a": [1, Infinity]}',
    "-Infinity": b'{"a": -Infinity}',
    "duplicate keys": b'{"a": 1, "a": 2}',
    "nested duplicate keys": b'{"a": {"b": 1, "c": 2, "b": 3}}',
    "lone high surrogate": b'{"a": "\\ud800"}',
    "lone low surrogate key": b'{"\\udfff": 1}',
    "invalid UTF-8": b'{"a": "\xff\xfe"}',
    "trailing data": b'{"a": 1} {"b": 2}',
    "unclosed": b'{"a": [1, 2',
    "BOM then garbage": b"\xef\xbb\xbf{garbage}",
    "two BOMs": b"\xef\xbb\xbf\xef\xbb\xbf{}",
    "unknown tag": b'{"a": {"$pickle": "Y29zCnN5c3RlbQ=="}}',
    "tag with a bad payload": b'{"a": {"$bytes": "not base64!"}}',
}


@pytest.mark.parametrize("case", list(JSON_BAD))
def test_bad_json_is_refused(world, case):
    src = world.inp / "bad.json"
    src.write_bytes(JSON_BAD[case])
    world.refused(src, "out.pkl", "--from", "json")


@pytest.mark.parametrize("case", ["NaN", "duplicate keys", "lone high surrogate", "invalid UTF-8", "unknown tag"])
def test_bad_json_lines_are_refused_with_the_line(world, case):
    src = world.inp / "bad.jsonl"
    src.write_bytes(b'{"key": "ok", "value": 1}\n' + JSON_BAD[case].replace(b"\n", b" ") + b"\n")
    world.refused(src, "out.pkl", "--from", "jsonl", words=["line 2"])


def test_json_with_a_bom_reads(world):
    src = world.inp / "bom.json"
    src.write_bytes(b'\xef\xbb\xbf{"a": [1, "\xc3\xa9"]}')
    r = world.convert(src, "out.pkl", "-q")
    assert r.exit_code == 0, r.stderr
    assert pickle.loads((world.out / "out.pkl").read_bytes()) == {"a": [1, "é"]}


def test_json_nested_200000_levels(world):
    depth = 200_000
    src = world.inp / "deep.json"
    src.write_text('{"lists": ' + "[" * depth + "]" * depth + "}")
    r = world.convert(src, "out.jsonl", "-q", seconds=60)
    assert r.exit_code == 0, r.stderr
    line = (world.out / "out.jsonl").read_text()
    assert line == '{"key": "lists", "value": ' + "[" * depth + "]" * depth + "}\n"
    (world.out / "out.jsonl").unlink()
    # pickle cannot hold it (the pickler recurses): a clean refusal, nothing left
    world.refused(src, "out.pkl", "-q", names=["out.pkl"], words=["nested too deeply"], seconds=60)


# -- pickles whose shared references expand without bound -------------------------------------------

def expansion_bomb(levels=12, fan=10, leaf=0):
    """A list of ``fan`` references to a list of ``fan`` references ... ``levels`` deep:
    a 300-byte pickle of fan**levels leaves (10**12: a JSON file of terabytes)."""
    value = leaf
    for _ in range(levels):
        value = [value] * fan
    return value


BOMBS = {
    "lists": lambda: {"bomb": expansion_bomb()},
    "dicts": lambda: {"bomb": _dict_bomb()},
    "tuples": lambda: {"bomb": _tuple_bomb()},
    "a big shared leaf": lambda: {"bomb": [[0] * 100_000] * 100_000},
}


def _dict_bomb():
    value = {"leaf": 1}
    for _ in range(12):
        value = {str(i): value for i in range(10)}
    return value


def _tuple_bomb():
    value = ("x",)
    for _ in range(12):
        value = (value,) * 10
    return value


BOMB_CASES = [("lists", out) for out in ("out.json", "out.jsonl", "out.sqlite", "out.pkl")] + [
    ("dicts", "out.json"), ("dicts", "out.pkl"), ("tuples", "out.jsonl"), ("tuples", "out.pkl"),
    ("a big shared leaf", "out.sqlite"), ("a big shared leaf", "out.pkl")]


@pytest.mark.parametrize("bomb,out", BOMB_CASES)
def test_expansion_bomb_is_refused_in_bounded_time_and_memory(world, bomb, out):
    src = world.inp / "bomb.pkl"
    src.write_bytes(pickle.dumps(BOMBS[bomb](), 4))
    assert src.stat().st_size < 2_000_000
    before = snapshot(world.inp)
    proc, took = run_subprocess([src, world.out / out, "-q"], seconds=60, memory_mb=600)
    assert_refusal(proc.returncode, proc.stderr, ["'bomb'" if out == "out.pkl" else out],
                   ["shared references expand"])
    assert took < 30
    assert snapshot(world.inp) == before and list(world.out.iterdir()) == []


@pytest.mark.parametrize("protocol", ["0", "2", "5"])
def test_expansion_bomb_to_old_pickle_protocols(world, protocol):
    src = world.inp / "bomb.pkl"
    src.write_bytes(pickle.dumps(BOMBS["lists"](), 2))
    proc, took = run_subprocess([src, world.out / "out.pkl", "--pickle-protocol", protocol, "-q"],
                                seconds=60, memory_mb=600)
    assert_refusal(proc.returncode, proc.stderr, ["'bomb'"], ["shared references expand"])
    assert list(world.out.iterdir()) == []


@pytest.mark.parametrize("out", ["outdb", "out.shelve"])
def test_expansion_bomb_in_a_dbm_store_keeps_its_sharing(world, out):
    """dbm sinks pickle each value with a memo: the sharing is kept, so nothing expands and
    the value converts exactly (a 10**12-leaf value in a few hundred bytes)."""
    src = world.inp / "bomb.pkl"
    src.write_bytes(pickle.dumps(BOMBS["lists"](), 4))
    # a shelve is written as what shelve.open makes here (dbm.sqlite3 on 3.13): ask for dbm.dumb
    args = ["--to", "dbm.dumb"] if out == "outdb" else ["--dbm", "dbm.dumb"]
    proc, took = run_subprocess([src, world.out / out, *args, "-q"], seconds=60, memory_mb=600)
    assert proc.returncode == 0, proc.stderr
    total = sum(p.stat().st_size for p in world.out.iterdir())
    assert total < 10_000
    db = dbm.dumb.open(str(world.out / out), "r")
    value = pickle.loads(db[b"bomb"])
    db.close()
    for _ in range(12):
        assert len(value) == 10 and all(v is value[0] for v in value)
        value = value[0]
    assert value == 0


def test_expansion_bomb_inside_a_shelve_value(world):
    src = make_dumb_shelve(world.inp / "shelf", pickle.dumps(expansion_bomb(), 2))
    proc, took = run_subprocess([src, world.out / "out.json", "--from", "shelve", "-q"], seconds=60, memory_mb=600)
    assert_refusal(proc.returncode, proc.stderr, ["out.json"], ["shared references expand"])
    assert list(world.out.iterdir()) == []


def test_expansion_bomb_in_process_through_the_runner(world):
    src = world.inp / "bomb.pkl"
    src.write_bytes(pickle.dumps(BOMBS["lists"](), 4))
    world.refused(src, "out.json", names=["out.json"], words=["shared references expand"], seconds=20)


@pytest.mark.parametrize("style", ["tagged", "plain"])
def test_expansion_budget_in_the_json_encoder(style):
    from converter import jsontags
    from converter.errors import UnsupportedValueError

    for bomb in (expansion_bomb(), {"x": [[0] * 1000] * 5000}):  # dicts and tuples: through the CLI above
        t = time.monotonic()
        with pytest.raises(UnsupportedValueError, match="shared references expand"):
            jsontags.dumps(bomb, style=style, name="record 'r'")
        assert time.monotonic() - t < 10
    # sharing within the budget is written once per use; a value without sharing has no limit
    shared = list(range(100))
    assert jsontags.loads(jsontags.dumps([shared] * 5000, style=style)) == [shared] * 5000
    assert len(jsontags.loads(jsontags.dumps([list(range(100)) for _ in range(20_000)], style=style))) == 20_000


def test_expansion_bomb_to_a_dbm_store_with_the_json_codec(world):
    src = world.inp / "bomb.pkl"
    src.write_bytes(pickle.dumps(BOMBS["lists"](), 4))
    world.refused(src, "outdb", "--to", "dbm.dumb", "--value-codec", "json", names=["outdb", "'bomb'"],
                  words=["shared references expand"])


def test_moderate_sharing_still_converts(world):
    """Sharing within the budget is written once per use, as before."""
    shared = list(range(1000))
    src = world.inp / "shared.pkl"
    src.write_bytes(pickle.dumps({"rows": [shared] * 500, "again": [shared, shared]}, 4))
    for out in ("out.json", "out.pkl"):
        r = world.convert(src, out, "-q")
        assert r.exit_code == 0, r.stderr
    assert (world.out / "out.json").stat().st_size > 500 * 1000
    back = pickle.loads((world.out / "out.pkl").read_bytes())
    assert back == {"rows": [shared] * 500, "again": [shared, shared]}


# -- SQLite: odd table names, hostile schemas -------------------------------------------------------

ODD_NAMES = ['we"ird', "with space", "ünïcødé 表", "select", '"; DROP TABLE x; --', "'; DROP TABLE x; --",
             "[brackets]", "`back`", "a.b", "?", "%s", "Robert'); DROP TABLE x;--"]


def _odd_database(path: Path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE x (key TEXT PRIMARY KEY, value TEXT)")
    con.execute("INSERT INTO x VALUES ('keep', 'me')")
    for i, name in enumerate(ODD_NAMES):
        q = '"' + name.replace('"', '""') + '"'
        col = '"' + (name + " col").replace('"', '""') + '"'
        con.execute(f"CREATE TABLE {q} (id INTEGER PRIMARY KEY, {col} TEXT)")
        con.execute(f"INSERT INTO {q} VALUES (?, ?)", (i, f"row of {name}"))
    con.commit()
    con.close()


def test_sqlite_odd_table_names_read_exactly(world):
    src = world.inp / "odd.sqlite"
    _odd_database(src)
    for i, name in enumerate(ODD_NAMES):
        r = world.convert(src, "out.pkl", "--table", name, "-q")
        assert r.exit_code == 0, (name, r.stderr)
        assert pickle.loads((world.out / "out.pkl").read_bytes()) == {i: {"id": i, name + " col": f"row of {name}"}}
        (world.out / "out.pkl").unlink()
    con = sqlite3.connect(src)
    assert con.execute("SELECT * FROM x").fetchall() == [("keep", "me")]
    con.close()
    # several tables and no --table: refused, naming them
    world.refused(src, "out.pkl", names=["odd.sqlite", "--table"])
    world.refused(src, "out.pkl", "--table", "no such table", names=["odd.sqlite", "no such table"])


@pytest.mark.parametrize("name", ODD_NAMES)
def test_sqlite_output_table_named_oddly(world, name):
    src = world.inp / "people.pkl"
    shutil.copyfile(EXAMPLE, src)
    r = world.convert(src, "out.sqlite", "--table", name, "-q")
    assert r.exit_code == 0, r.stderr
    con = sqlite3.connect(world.out / "out.sqlite")
    assert [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == [name]
    con.close()
    r = world.convert(world.out / "out.sqlite", "back.pkl", "--table", name, "-q")
    assert r.exit_code == 0, r.stderr
    assert pickle.loads((world.out / "back.pkl").read_bytes()) == pickle.loads(EXAMPLE.read_bytes())


def test_sqlite_with_invalid_utf8_text_is_refused(world):
    src = world.inp / "latin.sqlite"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE t (key INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO t VALUES (1, CAST(x'ff00e9' AS TEXT))")
    con.commit()
    con.close()
    world.refused(src, "out.json", words=["UTF-8"])


def test_dbm_sqlite3_with_null_values_is_refused(world):
    src = world.inp / "nulls.sqlite"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE Dict (key BLOB, value BLOB)")
    con.executemany("INSERT INTO Dict VALUES (?, ?)", [(b"a", b"1"), (b"b", None)])
    con.commit()
    con.close()
    world.refused(src, "out.json", "--from", "dbm.sqlite3", words=["NULL"])


def test_sqlite_triggers_and_views_do_nothing_when_read(world):
    """Reading is read-only: a trigger that would write cannot fire, and a view is not a table."""
    src = world.inp / "trig.sqlite"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE t (key TEXT PRIMARY KEY, v TEXT)")
    con.execute("CREATE TABLE log (msg TEXT)")
    con.execute("CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('fired'); END")
    con.execute("CREATE VIEW v AS SELECT * FROM t")
    con.execute("INSERT INTO t VALUES ('a', 'b')")
    con.execute("DELETE FROM log")
    con.commit()
    con.close()
    r = world.convert(src, "out.pkl", "--table", "t", "-q")
    assert r.exit_code == 0, r.stderr
    assert pickle.loads((world.out / "out.pkl").read_bytes()) == {"a": {"key": "a", "v": "b"}}


# -- files another program is writing ------------------------------------------------------------

def _gdbm_available():
    if not Path(DEBIAN_PY).exists():
        return False
    return subprocess.run([DEBIAN_PY, "-c", "import dbm.gnu"], capture_output=True).returncode == 0


class Holder:
    """A child process that opens a store, says "ready", and keeps it open until told (or killed)."""

    def __init__(self, python, code, *args):
        self.proc = subprocess.Popen([python, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", self.proc.stderr.read()

    def finish(self):
        self.proc.communicate("go\n", timeout=30)
        assert self.proc.returncode == 0

    def kill(self):
        self.proc.kill()
        self.proc.communicate(timeout=30)


GDBM_HOLD = """
import sys, dbm.gnu
db = dbm.gnu.open(sys.argv[1], sys.argv[2])
if sys.argv[2] == "w":
    db[b"added"] = b"by the writer"
print("ready", flush=True)
sys.stdin.readline()
db.close()
"""


@pytest.mark.skipif(not _gdbm_available(), reason="needs Debian's python3 with dbm.gnu (gdbm 1.23)")
def test_gdbm_open_for_writing_elsewhere_is_refused(world):
    src = world.inp / "busy.gdbm"
    shutil.copyfile(FIX / "debian" / "gdbm_small.gdbm", src)
    writer = Holder(DEBIAN_PY, GDBM_HOLD, src, "w")
    try:
        world.refused(src, "out.json", "--key-codec", "raw", words=["locked by another process", "close it first"],
                      seconds=10)
    finally:
        writer.finish()
    r = world.convert(src, "out.pkl", "--key-codec", "raw", "-q")
    assert r.exit_code == 0, r.stderr
    assert pickle.loads((world.out / "out.pkl").read_bytes())[b"added"] == "by the writer"  # text values read as text (utf8-or-raw)


@pytest.mark.skipif(not _gdbm_available(), reason="needs Debian's python3 with dbm.gnu (gdbm 1.23)")
def test_gdbm_open_for_reading_elsewhere_reads(world):
    src = world.inp / "shared.gdbm"
    shutil.copyfile(FIX / "debian" / "gdbm_small.gdbm", src)
    reader = Holder(DEBIAN_PY, GDBM_HOLD, src, "r")
    try:
        r = world.convert(src, "out.json", "--key-codec", "raw", "-q", seconds=10)
        assert r.exit_code == 0, r.stderr
    finally:
        reader.finish()


def test_gdbm_writer_lock_is_refused_without_the_c_library(world):
    """gdbm 1.23 holds flock(LOCK_EX) while a database is open for writing (checked against the
    real library above): the same lock taken here must be refused the same way."""
    import fcntl

    src = world.inp / "std.db"
    shutil.copyfile(FIX / "gdbm" / "std.db", src)
    with open(src, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        world.refused(src, "out.json", "--key-codec", "raw", words=["locked by another process"], seconds=10)
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    r = world.convert(src, "out.json", "--key-codec", "raw", "-q")
    assert r.exit_code == 0, r.stderr


SQLITE_WRITER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode = DELETE")
if sys.argv[2] == "spill":
    con.execute("PRAGMA cache_size = 5")  # changed pages go to the database file before COMMIT
con.execute("BEGIN IMMEDIATE")
for i in range(2000):
    con.execute("UPDATE t SET v = ? WHERE key = ?", ("new" * 30, f"k{i:04}"))
print("ready", flush=True)
sys.stdin.readline()
con.execute("COMMIT")
"""


def _rollback_db(path: Path):
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("CREATE TABLE t (key TEXT PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(f"k{i:04}", "old" * 30) for i in range(2000)])
    con.commit()
    con.close()


def _values(path: Path) -> set:
    return {v["v"][:3] for v in pickle.loads(path.read_bytes()).values()}


def test_sqlite_with_a_write_in_progress_reads_the_committed_state(world):
    src = world.inp / "busy.sqlite"
    _rollback_db(src)
    writer = Holder(sys.executable, SQLITE_WRITER, src, "hold")
    try:
        assert Path(f"{src}-journal").exists()
        r = world.convert(src, "out.pkl", "-q", seconds=20)
        assert r.exit_code == 0, r.stderr
        assert _values(world.out / "out.pkl") == {"old"}  # all of the committed state, none of the new
    finally:
        writer.finish()


def test_sqlite_with_a_write_spilled_into_the_file_is_refused_not_half_read(world):
    """The writer has already written changed pages into the database file (its cache spilled);
    reading the file as it is (immutable=1) gave a mix of old and new rows."""
    src = world.inp / "spilled.sqlite"
    _rollback_db(src)
    writer = Holder(sys.executable, SQLITE_WRITER, src, "spill")
    try:
        err = world.refused(src, "out.pkl", words=["-journal", "another program is writing it"], seconds=20)
        assert "locked" in err
    finally:
        writer.finish()
    r = world.convert(src, "out.pkl", "-q")
    assert r.exit_code == 0 and _values(world.out / "out.pkl") == {"new"}


def test_sqlite_with_a_hot_journal_from_a_crashed_writer_is_refused(world):
    src = world.inp / "crashed.sqlite"
    _rollback_db(src)
    writer = Holder(sys.executable, SQLITE_WRITER, src, "spill")
    writer.kill()  # crashed mid-transaction: a hot journal and a half-written file
    assert Path(f"{src}-journal").stat().st_size > 0
    world.refused(src, "out.pkl", words=["crashed while writing", "recover"], seconds=20)
    # the input (database and journal) is untouched: snapshot() compared them
