"""Fuzz targets: one per reader, shared by tests/test_fuzz.py (Hypothesis, in CI) and
fuzz/run_fuzz.py (a longer campaign, coverage-guided with atheris when it is installed).

A target takes the bytes of one file, puts them where the reader looks (beside the other
files of the store, copied from a real fixture), and reads every record to the end: first
the raw records of the format's reader, then the records as ``convert`` reads them (with
codecs, e.g. the pickles inside a shelve). The contract under test: a reader may only fail
with ``converter.errors.ConverterError`` (or a subclass), whatever the bytes.

Seeds are the real fixture files made by the real software (tests/fixtures, see its README),
and for JSON, which has no fixture, files that this tool writes from those fixtures.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass
class Target:
    """``fmt``: the format read; ``member``: the file name the fuzzed bytes are written to;
    ``read``: the name given to the reader; ``companions``: fixture files copied beside it;
    ``seeds``: fixture files whose bytes start the search; ``options``: Options fields."""

    fmt: str
    member: str
    seeds: list[Path]
    read: str | None = None
    companions: list[Path] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    data: list[bytes] = field(default_factory=list)  # seeds made here, not read from a file

    def seed_bytes(self) -> list[bytes]:
        return [p.read_bytes() for p in self.seeds if p.is_file()] + list(self.data)


def _f(*names):
    return [FIXTURES / n for n in names]


TARGETS: dict[str, Target] = {
    "pickle": Target("pickle", "in.pkl", _f(
        "py2/py2_proto0.pkl", "py2/py2_proto1.pkl", "py2/py2_proto2.pkl", "py2/py2_appended.pkl",
        "safepickle/py2_values_p0.pkl", "safepickle/py2_object_p0.pkl", "safepickle/py3_bytes_p2.pkl",
    ) + [ROOT / "examples" / "people.pkl"]),
    "json": Target("json", "in.json", []),  # seeds made by json_seeds()
    "jsonl": Target("jsonl", "in.jsonl", []),
    # dbm.dumb: the index (.dir) is parsed, the data file (.dat) only sliced
    "dbm.dumb": Target("dbm.dumb", "db.dir", _f("py313/dbm_dumb.dir"), read="db",
                       companions=_f("py313/dbm_dumb.dat")),
    # shelve on dbm.dumb: the values in .dat are pickles written by Python 2
    "shelve": Target("shelve", "db.dat", _f("py2/py2_dumbdbm_shelve.dat"), read="db",
                     companions=_f("py2/py2_dumbdbm_shelve.dir")),
    "dbm.sqlite3": Target("dbm.sqlite3", "in.sqlite", _f("py313/dbm_sqlite3.sqlite", "py313/shelve_sqlite3.db")),
    "sqlite": Target("sqlite", "in.sqlite", _f("py313/sqlite_people.sqlite", "py313/sqlitedict_style.sqlite")),
    "dbm.gnu": Target("dbm.gnu", "in.gdbm", _f(
        "gdbm/std.db", "gdbm/numsync.db", "gdbm/empty.db", "debian/gdbm_small.gdbm", "debian/gdbm_shelve_p2.gdbm")),
    "dbm.ndbm": Target("dbm.ndbm", "db.pag", _f("gdbm/compat.pag"), read="db", companions=_f("gdbm/compat.dir")),
    "berkeleydb": Target("berkeleydb", "in.db", _f(
        "bdb/hash.db", "bdb/btree_v8.db", "bdb/btree_be_chksum.db", "bdb/hash185.db", "bdb/hash_v5.db",
        "debian/bdb_hash.db", "debian/ndbm_small.db")),
    "berkeleydb-multi": Target("berkeleydb", "in.db", _f("bdb/multi.db"), options={"database": "alpha"}),
    "gdbm-dump": Target("gdbm-dump", "in.dump", _f("gdbm/std.dump", "gdbm/small512.bin")),
    "db_dump": Target("db_dump", "in.txt", _f("bdb/dump_print.txt", "bdb/dump_bytevalue.txt")),
    "db_dump-multi": Target("db_dump", "in.txt", _f("bdb/dump_multi.txt"), options={"database": "beta"}),
}


# --- the resource budget's paths -----------------------------------------------------------
#
# Small versions of the hostile inputs of tests/test_budget.py, read under a small budget so
# that mutations land on both sides of every limit quickly: constructor sizes, lazy ranges,
# deep and shared tuple keys, ints sharing one hash, big ints, shared big strings.

def _small_budget():
    from converter.budget import Budget

    return Budget(bytes=1 << 16, items=1000, shared=5000, depth=40, hash_work=5000, digits=500,
                  alloc=1 << 14, collisions=20)


def _long(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _rec(ops: bytes) -> bytes:
    return b"\x80\x02}X\x01\x00\x00\x00k" + ops + b"s."


_P61 = 2**61 - 1
BUDGET_PICKLES = [
    _rec(_g("__builtin__", "bytearray") + _long(1 << 15) + b"\x85R"),
    _rec(_g("__builtin__", "list") + _g("__builtin__", "xrange") + _long(5000) + b"\x85R\x85R"),
    _rec(_g("collections", "deque") + b"(" + _g("__builtin__", "xrange") + _long(2**62) + b"\x85RK\x00tR"),
    _rec(_g("copy_reg", "_reconstructor") + _g("__builtin__", "bytearray") * 2 + _long(1 << 15) + b"\x87R"),
    b"\x80\x02}K\x01" + b"\x85" * 60 + b"K\x01s.",  # a tuple key 60 deep
    b"\x80\x02}K\x01\x85" + b"2\x86" * 16 + b"K\x01s.",  # a key of shared tuples
    b"\x80\x02}(" + b"".join(_long(i * _P61) + b"K\x00" for i in range(1, 40)) + b"u.",  # hash flooding
    b"\x80\x04\x8f(" + b"".join(_long(i * _P61) for i in range(1, 40)) + b"\x90.",
    _rec(b"\x8b" + (800).to_bytes(4, "little") + b"\x07" * 800),  # an int of ~1,900 digits
    b"\x80\x04]\x94(X" + (5000).to_bytes(4, "little") + b"y" * 5000 + b"\x94" + b"h\x01" * 30 + b"e.",
]
BUDGET_JSON = [
    ('{"$dict": [[' + '{"$tuple": [' * 60 + "1" + "]}" * 60 + ", 1]]}").encode(),
    ('{"k": {"$set": [' + ", ".join(str(i * _P61) for i in range(1, 40)) + "]}}").encode(),
    ('{"k": 1' + "0" * 800 + "}").encode(),
    ('{"k": {"$int": "1' + "0" * 800 + '"}}').encode(),
]


TARGETS["pickle-budget"] = Target("pickle", "in.pkl", [], data=BUDGET_PICKLES, options={"budget": "small"})
TARGETS["json-budget"] = Target("json", "in.json", [], data=BUDGET_JSON, options={"budget": "small"})


def json_seeds(workdir: Path) -> dict[str, list[bytes]]:
    """JSON and JSON Lines seeds: what this tool writes for fixtures with tricky values."""
    import converter

    workdir.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, list[bytes]] = {"json": [], "jsonl": []}
    sources = [FIXTURES / "py2" / "py2_proto2.pkl", FIXTURES / "safepickle" / "py2_values_p2.pkl",
               ROOT / "examples" / "people.pkl"]
    for i, src in enumerate(sources):
        for fmt in ("json", "jsonl"):
            out = workdir / f"seed{i}.{fmt}"
            if not out.exists():
                try:
                    converter.convert(src, out, to=fmt, force=True)
                except converter.ConverterError:
                    continue
            seeds[fmt].append(out.read_bytes())
    seeds["json"] += [b'{"a": [1, 2.5, "x", null, true], "b": {"$bytes": "AAE="}}', b"[[], {}, \"\\u00e9\"]"]
    seeds["jsonl"] += [b'{"key": "a", "value": 1}\n{"key": 2, "value": [1]}\n', b'[1]\n"s"\n']
    return seeds


class Hang(BaseException):
    """A target ran past its time limit (BaseException: the CLI and readers must not catch it)."""


def _alarm(signum, frame):
    raise Hang()


def run(name: str, data: bytes, workdir: Path, seconds: float = 0) -> int:
    """Read ``data`` as target ``name`` inside ``workdir`` (emptied first); return the record count.

    Raises ConverterError for bad input (the allowed outcome), Hang after ``seconds`` (0: no
    limit; needs the main thread), anything else is a bug.
    """
    from converter.budget import using
    from converter.registry import get_registry

    target = TARGETS[name]
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for c in target.companions:
        shutil.copyfile(c, workdir / target.member.replace(Path(target.member).suffix, c.suffix))
    (workdir / target.member).write_bytes(data)
    path = workdir / (target.read or target.member)
    registry = get_registry()
    fmt = registry.format(target.fmt)
    fields = dict(target.options)
    if fields.get("budget") == "small":
        fields["budget"] = _small_budget()
    if seconds:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with using(fields.get("budget")):
            return _read_all(fmt, path, fields, registry)
    finally:
        if seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def _read_all(fmt, path, fields, registry) -> int:
    from converter.codecs import decode_records
    from converter.options import Options

    n = 0
    for _ in fmt.reader(path, Options(**fields)):
        n += 1
    if fmt.kv:  # again as convert reads it: through the codecs (pickles unpickled safely)
        options = Options(**fields)
        records = decode_records(fmt.reader(path, options), registry, options, str(path),
                                 fmt.key_codec, fmt.value_codec)
        for _ in records:
            n += 1
    return n


os.environ.setdefault("CONVERTER_LOAD_PLUGINS", "")
