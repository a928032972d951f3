"""The benchmark suite: this tool against the hand-written baseline or the peer tool, per workload.

    .venv/bin/python benchmarks/run.py [--size N ...] [--reps R] [--quick] [--only NAME ...]

Generates the data once per size (cached under ``$XDG_CACHE_HOME/converter-bench``, default
``~/.cache/converter-bench``): N records shaped like examples/people.pkl
(``{"key": "Omkar17", "name": "Omkar Pathak", "age": 21, "pay": 40000}`` keyed by "key"),
by default 100,000, 300,000 and 1,000,000 so that the growth of cost is visible.  Then, for each size
and repetition, every workload runs this tool and its baseline one after the other
(alternating which goes first), each in its own process under ``/usr/bin/time``, which
reports the process's own peak RSS; its peak anonymous RSS (memory that is not file pages,
e.g. not the pages of an mmapped input) is sampled from /proc every 5 ms.  Printed per run:
wall time of the whole process (so the CLI's start-up counts, as it does for users),
records/s and peak RSS; then a markdown table of medians with the ratio tool/baseline and
the target the issue sets, and the memory growth from the smallest to the largest size
(benchmarks/RESULTS.md holds a run of it).  ``--json FILE`` also saves every run.

bench_gdbm.py and bench_bdb.py, next to this file, time the two iteration loops of workload 4
inside their processes (no start-up), with other data and a btree option.

Workloads (the issue's list):

1. pickle -> JSON: ``convert x.pkl x.json -q`` vs ``json.dump(pickle.load(f), out)``.
2. JSON -> SQLite table vs ``sqlite-utils insert DB TABLE FILE --pk key`` (installed into a
   venv of its own under the cache directory; never a dependency of the project).  2a gives
   this tool the JSON object keyed by "key" (what ``convert x.pkl x.json`` writes), which
   makes the same table as sqlite-utils (TEXT primary key "key"); 2b gives it the very file
   sqlite-utils reads, a JSON array, whose record keys are 0..n-1, so ``--pk id`` adds an
   INTEGER key column.
3. gdbm -> SQLite key/value: the pure gdbm reader vs a hand-written firstkey/nextkey loop over
   the C ``dbm.gnu`` binding with one ``executemany`` in one transaction (Debian's
   /usr/bin/python3, which has dbm.gnu).  Values are UTF-8 JSON text of each record.
4. Iterating every record: the pure gdbm and Berkeley DB hash readers vs the C bindings
   (dbm.gnu, bsddb3 under /usr/bin/python3).  In-process loops, no conversion.
5. SQLite table -> JSON Lines and dbm.dumb -> dbm.sqlite3, each vs a hand-written stdlib loop
   that writes the same format.

0. Start-up on a small file: ``convert examples/people.pkl out.json`` vs the same hand-written
   script, CPU time (user + sys) of the whole process, at least 10 repetitions.
6. ``convert verify A B`` (the gdbm file against the tool's SQLite copy of it) against converting
   A to B, with the memory per record from the smallest to the largest size; and
   ``convert A B --verify`` against ``convert A B``.
7. A gdbm file of text values with one binary value at the end to JSON, by default (every
   record must fit the codecs chosen) against the same with ``--value-codec raw`` forced.

The last lines are one verdict per target the issues set: PASS or FAIL, the measured figure
and the target (``targets()``). Time targets are judged on the wall time of the whole
process, what a user waits for (sqlite-utils, for one, spends much of its time waiting on the
disk); the CPU-time ratio is printed beside it, steadier when the machine is shared. the memory of every streaming workload is "flat" when its peak
anonymous RSS at the largest size is at most 1.25x + 8 MB of that at the smallest.

``--quick`` is ``--size 20000 --size 100000 --reps 1`` (start-up still 10 times): every target
checked in under 3 minutes, at sizes too small for the 1M figures.  Numbers on a shared machine are
noisy: compare the ratios measured within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = Path(sys.executable)
CONVERT = VENV_PY.parent / "convert"
DEBIAN_PY = Path("/usr/bin/python3")
TIME = Path("/usr/bin/time")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "converter-bench"
PEER_VENV = CACHE / "peer-venv"
DATA_VERSION = "3"  # bump when the generated data changes
WARMUP = 2000  # records of the untimed warm-up run

# -- data ------------------------------------------------------------------------------------

# Runs under the benchmark's own Python: the records, then the files stdlib can make.
MAKE_STDLIB = r"""
import dbm.dumb, json, os, pickle, random, sqlite3, sys
d, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(5)
first = ["Omkar", "Jagdish", "Asha", "Wei", "Maria", "Olu", "Sven", "Aiko", "Ravi", "Lena"]
last = ["Pathak", "Smith", "Garcia", "Chen", "Okafor", "Nilsson", "Tanaka", "Rossi"]
people = {}
for i in range(n):
    key = f"{rng.choice(first)}{i}"
    people[key] = {"key": key, "name": f"{rng.choice(first)} {rng.choice(last)}",
                   "age": rng.randrange(18, 90), "pay": rng.randrange(20000, 200000)}
with open(os.path.join(d, "people.pkl"), "wb") as f:
    pickle.dump(people, f)  # the classic example's call: default protocol (4)
with open(os.path.join(d, "people-object.json"), "w") as f:
    json.dump(people, f)
with open(os.path.join(d, "people-array.json"), "w") as f:
    json.dump(list(people.values()), f)
with open(os.path.join(d, "people.kv"), "w") as f:  # key TAB value-JSON lines, for the C makers
    for key, rec in people.items():
        f.write(key + "\t" + json.dumps(rec) + "\n")
con = sqlite3.connect(os.path.join(d, "people.sqlite"))
con.execute('CREATE TABLE people ("key" TEXT PRIMARY KEY NOT NULL, "name" TEXT, "age" INTEGER, "pay" INTEGER)')
with con:
    con.executemany("INSERT INTO people VALUES (?, ?, ?, ?)",
                    ((r["key"], r["name"], r["age"], r["pay"]) for r in people.values()))
con.close()
# dbm.dumb: its own writer opens the index for every new key; write the same files directly
# (values at 512-byte blocks, index lines of repr'd (key, (pos, size)) as dbm.dumb writes them)
with open(os.path.join(d, "people-dumb.dat"), "wb") as dat, \
        open(os.path.join(d, "people-dumb.dir"), "w", encoding="Latin-1") as idx:
    pos = 0
    for key, rec in people.items():
        value = json.dumps(rec).encode()
        dat.write(value + b"\0" * (-len(value) % 512))
        idx.write("%r, %r\n" % (key, (pos, len(value))))
        pos += len(value) + (-len(value) % 512)
db = dbm.dumb.open(os.path.join(d, "people-dumb"), "r")  # check it reads back
assert len(db) == n and json.loads(db[next(iter(people))]) == people[next(iter(people))]
db.close()
"""

# Runs under Debian's python3: the C libraries write the gdbm and Berkeley DB files.
MAKE_C = r"""
import dbm.gnu, os, sys
from bsddb3 import db as bdb
d = sys.argv[1]
g = dbm.gnu.open(os.path.join(d, "people.gdbm"), "nf")
b = bdb.DB()
b.set_cachesize(0, 64 << 20)
b.open(os.path.join(d, "people.bdb"), None, bdb.DB_HASH, bdb.DB_CREATE)
with open(os.path.join(d, "people.kv"), "rb") as f:
    for line in f:
        key, _, value = line.rstrip(b"\n").partition(b"\t")
        g[key] = value
        b.put(key, value)
g.close()
b.close()
# the same text values, and one binary value at the end (issue 8: codecs fit every record)
m = dbm.gnu.open(os.path.join(d, "people-mixed.gdbm"), "nf")
with open(os.path.join(d, "people.kv"), "rb") as f:
    for line in f:
        key, _, value = line.rstrip(b"\n").partition(b"\t")
        m[key] = value
m[b"zz-binary"] = bytes(range(256))
m.close()
"""


def make_data(n: int) -> Path:
    """The data directory for n records, made on first use."""
    d = CACHE / f"data-{n}-v{DATA_VERSION}"
    if (d / "done").exists():
        return d
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    t = time.perf_counter()
    print(f"making {n:,} records in {d} ...", flush=True)
    subprocess.run([str(VENV_PY), "-c", MAKE_STDLIB, str(d), str(n)], check=True)
    if DEBIAN_PY.exists():
        subprocess.run([str(DEBIAN_PY), "-c", MAKE_C, str(d)], check=True)
        if CONVERT.exists():  # B of the verify workload: the tool's own copy of the gdbm file
            subprocess.run([str(CONVERT), str(d / "people.gdbm"), str(d / "people-gdbm.sqlite"), "-q"],
                           check=True, env=run_env())
    (d / "done").write_text("ok\n")
    print(f"  made in {time.perf_counter() - t:.1f} s", flush=True)
    return d


def peer_sqlite_utils() -> Path | None:
    """sqlite-utils in a venv of its own (the peer tool; not a project dependency)."""
    exe = PEER_VENV / "bin" / "sqlite-utils"
    if exe.exists():
        return exe
    print(f"installing sqlite-utils into {PEER_VENV} ...", flush=True)
    try:
        subprocess.run([str(VENV_PY), "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "sqlite-utils"], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"  cannot install sqlite-utils ({exc}); workload 2 is skipped", flush=True)
        return None
    return exe if exe.exists() else None


# -- baselines (hand-written loops) ------------------------------------------------------------

PICKLE_JSON = r"""
import json, pickle, sys
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "w") as out:
    json.dump(pickle.load(f), out)
"""

GDBM_SQLITE_C = r"""
import dbm.gnu, sqlite3, sys
db = dbm.gnu.open(sys.argv[1], "r")
con = sqlite3.connect(sys.argv[2])
con.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT)")

def records():
    k = db.firstkey()
    while k is not None:
        yield k.decode(), db[k].decode()
        k = db.nextkey(k)

with con:
    con.executemany("INSERT INTO kv VALUES (?, ?)", records())
con.close()
db.close()
"""

GDBM_ITER_PURE = r"""
import sys
from converter.plugins.gdbm_file import GdbmFile
n = size = 0
with GdbmFile(sys.argv[1]) as db:
    for k, v in db:
        n += 1
        size += len(v)
print(n, size)
"""

GDBM_ITER_C = r"""
import dbm.gnu, sys
db = dbm.gnu.open(sys.argv[1], "r")
n = size = 0
k = db.firstkey()
while k is not None:
    v = db[k]
    n += 1
    size += len(v)
    k = db.nextkey(k)
db.close()
print(n, size)
"""

BDB_ITER_PURE = r"""
import sys
from converter.plugins.bdb_file import BerkeleyDB
n = size = 0
with BerkeleyDB(sys.argv[1]) as db:
    for k, v in db:
        n += 1
        size += len(v)
print(n, size)
"""

BDB_ITER_C = r"""
import sys
from bsddb3 import db
d = db.DB()
d.open(sys.argv[1], None, db.DB_UNKNOWN, db.DB_RDONLY)
c = d.cursor()
n = size = 0
r = c.first()
while r:
    n += 1
    size += len(r[1])
    r = c.next()
c.close()
d.close()
print(n, size)
"""

SQLITE_JSONL = r"""
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
cur = con.execute('SELECT * FROM people ORDER BY rowid')
cols = [c[0] for c in cur.description]
with open(sys.argv[2], "w") as out:
    for row in cur:
        value = dict(zip(cols, row))
        out.write(json.dumps({"key": value["key"], "value": value}) + "\n")
"""

DUMB_SQLITE3 = r"""
import dbm.dumb, sqlite3, sys
db = dbm.dumb.open(sys.argv[1], "r")
con = sqlite3.connect(sys.argv[2])
con.execute("CREATE TABLE Dict (key BLOB UNIQUE NOT NULL, value BLOB NOT NULL)")
with con:
    con.executemany("INSERT INTO Dict (key, value) VALUES (?, ?)", ((k, db[k]) for k in db.keys()))
con.close()
db.close()
"""


# -- workloads -----------------------------------------------------------------------------------

@dataclass
class Workload:
    name: str
    title: str
    tool: list  # argv templates: {d} data dir, {o} output dir
    base: list
    base_name: str
    target: float | None = None  # tool/baseline wall-time ratio to stay within
    target_note: str = ""
    mem_limit_mb: float | None = None  # tool peak RSS limit
    streaming: bool = True  # peak memory should stay flat as the data grows
    needs: tuple = ()  # paths that must exist
    same_output: bool = False  # both print the same summary (record count, bytes)
    cpu_target: float | None = None  # tool/baseline CPU-time ratio (user + sys) to stay within
    mem_target: float | None = None  # tool/baseline peak-RSS ratio to stay within
    slope_limit: float | None = None  # bytes of anonymous memory per extra record, smallest -> largest size
    fixed_data: bool = False  # runs on the bundled example, whatever --size says (start-up)
    min_reps: int = 0  # at least this many repetitions (short runs need more to be steady)


def workloads(peer: Path | None) -> list[Workload]:
    py, deb = str(VENV_PY), str(DEBIAN_PY)
    conv = str(CONVERT) if CONVERT.exists() else None
    if conv is None:  # not run from the venv the tool is installed in
        raise SystemExit(f"no {CONVERT}: run this with the Python whose environment has the tool installed")
    example = str(ROOT / "examples" / "people.pkl")
    w = [
        Workload("startup", "0. small file: examples/people.pkl -> JSON (CPU)",
                 [conv, example, "{o}/out.json", "-q"], [py, "-c", PICKLE_JSON, example, "{o}/out.json"],
                 "json.dump(pickle.load(f))", cpu_target=3.0, target_note="CPU <= 3x",
                 streaming=False, fixed_data=True, min_reps=10),
        Workload("pickle-json", "1. pickle -> JSON", [conv, "{d}/people.pkl", "{o}/out.json", "-q"],
                 [py, "-c", PICKLE_JSON, "{d}/people.pkl", "{o}/out.json"], "json.dump(pickle.load(f))",
                 target=0.8, mem_target=1.1, target_note="<= 0.8x, memory <= 1.1x", streaming=False),
    ]
    if peer is not None:
        w += [
            Workload("json-sqlite", "2a. JSON object -> SQLite table",
                     [conv, "{d}/people-object.json", "{o}/people.sqlite", "-q"],
                     [str(peer), "insert", "{o}/people.sqlite", "people", "{d}/people-array.json", "--pk", "key"],
                     "sqlite-utils insert --pk key", target=0.5, target_note="<= 0.5x, < 100 MB",
                     mem_limit_mb=100),
            Workload("jsonarray-sqlite", "2b. JSON array -> SQLite table",
                     [conv, "{d}/people-array.json", "{o}/people.sqlite", "--pk", "id", "-q"],
                     [str(peer), "insert", "{o}/people.sqlite", "people", "{d}/people-array.json", "--pk", "key"],
                     "sqlite-utils insert --pk key", target=0.5, target_note="<= 0.5x, < 100 MB",
                     mem_limit_mb=100),
        ]
    w += [
        Workload("gdbm-sqlite", "3. gdbm -> SQLite key/value", [conv, "{d}/people.gdbm", "{o}/out.sqlite", "-q"],
                 [deb, "-c", GDBM_SQLITE_C, "{d}/people.gdbm", "{o}/out.sqlite"], "dbm.gnu loop + executemany",
                 target=1.2, target_note="<= 1.2x", needs=("people.gdbm",)),
        Workload("gdbm-iter", "4a. iterate gdbm (pure vs C)", [py, "-c", GDBM_ITER_PURE, "{d}/people.gdbm"],
                 [deb, "-c", GDBM_ITER_C, "{d}/people.gdbm"], "dbm.gnu firstkey/nextkey",
                 target=3.0, target_note="<= 3x", needs=("people.gdbm",), same_output=True),
        Workload("bdb-iter", "4b. iterate Berkeley DB hash (pure vs C)", [py, "-c", BDB_ITER_PURE, "{d}/people.bdb"],
                 [deb, "-c", BDB_ITER_C, "{d}/people.bdb"], "bsddb3 cursor",
                 target=1.3, target_note="<= 1.3x", needs=("people.bdb",), same_output=True),
        Workload("sqlite-jsonl", "5a. SQLite table -> JSON Lines", [conv, "{d}/people.sqlite", "{o}/out.jsonl", "-q"],
                 [py, "-c", SQLITE_JSONL, "{d}/people.sqlite", "{o}/out.jsonl"], "sqlite3 + json.dumps loop"),
        Workload("dumb-sqlite3", "5b. dbm.dumb -> dbm.sqlite3",
                 [conv, "{d}/people-dumb", "{o}/out.sqlite3", "--to", "dbm.sqlite3", "-q"],
                 [py, "-c", DUMB_SQLITE3, "{d}/people-dumb", "{o}/out.sqlite3"], "dbm.dumb + sqlite3 executemany"),
        Workload("mixed-json", "7. gdbm, text values and one binary, -> JSON: default vs --value-codec raw",
                 [conv, "{d}/people-mixed.gdbm", "{o}/out.json", "-q"],
                 [conv, "{d}/people-mixed.gdbm", "{o}/out.json", "-q", "--value-codec", "raw"],
                 "the same, --value-codec raw", target=1.3, target_note="<= 1.3x", needs=("people-mixed.gdbm",)),
        Workload("verify", "6a. verify A B (gdbm vs its SQLite copy) vs converting A to B",
                 [conv, "verify", "{d}/people.gdbm", "{d}/people-gdbm.sqlite"],
                 [conv, "{d}/people.gdbm", "{o}/out.sqlite", "-q"], "convert A B",
                 target=1.5, slope_limit=32, target_note="<= 1.5x, <= 32 B/record", needs=("people-gdbm.sqlite",)),
        Workload("convert-verify", "6b. convert --verify vs convert (gdbm -> SQLite)",
                 [conv, "{d}/people.gdbm", "{o}/out.sqlite", "-q", "--verify"],
                 [conv, "{d}/people.gdbm", "{o}/out.sqlite", "-q"], "convert A B",
                 target=2.5, target_note="verify phase <= 1.5x (total <= 2.5x)", needs=("people.gdbm",)),
    ]
    return w


@dataclass
class Run:
    wall: float
    rss_mb: float
    anon_mb: float = 0.0
    stdout: str = ""
    cpu: float = 0.0  # user + sys seconds of the process


@dataclass
class Stats:
    tool: list = field(default_factory=list)
    base: list = field(default_factory=list)


def run_one(argv: list, outdir: Path) -> Run:
    """Run argv in a fresh process under /usr/bin/time: wall time, the process's own peak RSS
    (from /usr/bin/time, i.e. its wait4 rusage) and its peak anonymous RSS (sampled from
    /proc every 5 ms: memory that is not file pages such as an mmap of the input)."""
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen([str(TIME), "-o", tf.name, "-f", "%M %U %S", *argv], env=run_env(),
                                stdout=out, stderr=err)
        sampler = _AnonSampler(proc.pid)
        sampler.start()
        proc.wait()
        wall = time.perf_counter() - t
        sampler.done = True
        sampler.join()
        rss_kb, user, sys_s = tf.read().split()[-3:]
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{stderr[-2000:]}")
    shutil.rmtree(outdir)
    return Run(wall, int(rss_kb) / 1024, sampler.peak_kb / 1024, stdout.strip(), float(user) + float(sys_s))


class _AnonSampler(threading.Thread):
    """Peak RssAnon of the process that /usr/bin/time (pid) runs, sampled every 5 ms."""

    def __init__(self, time_pid: int):
        super().__init__(daemon=True)
        self.time_pid, self.done, self.peak_kb = time_pid, False, 0

    def run(self):
        child = None
        while not self.done:
            try:
                if child is None:
                    kids = Path(f"/proc/{self.time_pid}/task/{self.time_pid}/children").read_text().split()
                    child = int(kids[0]) if kids else None
                if child is not None:
                    for line in Path(f"/proc/{child}/status").read_text().splitlines():
                        if line.startswith("RssAnon:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            time.sleep(0.005)


def run_env() -> dict:
    """The environment of every run: byte code cached (as for users), but not in the source tree."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(CACHE / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def fill(argv: list, d: Path, o: Path) -> list:
    return [a.replace("{d}", str(d)).replace("{o}", str(o)) for a in argv]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    deb = subprocess.run([str(DEBIAN_PY), "-V"], capture_output=True, text=True).stdout.strip() \
        if DEBIAN_PY.exists() else "absent"
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}; "
            f"tool: Python {platform.python_version()} ({VENV_PY}); C-binding baselines: {deb} ({DEBIAN_PY}); "
            f"SQLite {__import__('sqlite3').sqlite_version}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, action="append", help="records (repeatable; default 100000 and 1000000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each pair (default 3)")
    ap.add_argument("--quick", action="store_true", help="20,000 and 100,000 records, 1 repetition (start-up 10): "
                    "a check in under 3 minutes")
    ap.add_argument("--only", action="append", help="run only these workloads (by name, repeatable)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--from-log", type=Path, help="print the table and verdicts of an earlier run from what it printed")
    args = ap.parse_args(argv)
    if args.from_log:
        return from_log(args.from_log, args.only)
    sizes = args.size or ([20_000, 100_000] if args.quick else [100_000, 300_000, 1_000_000])
    reps = 1 if args.quick else args.reps
    if not TIME.exists():
        raise SystemExit("needs /usr/bin/time (Debian package 'time') to measure peak RSS")

    peer = peer_sqlite_utils()
    print(machine(), flush=True)
    # warm-up: every command once on a little data (byte code compiled, files cached, all work)
    small = make_data(WARMUP)
    with tempfile.TemporaryDirectory(prefix="converter-bench-") as tmp:
        for w in workloads(peer):
            if not args.only or w.name in args.only:
                if all((small / p).exists() for p in w.needs):
                    for argv in (w.tool, w.base):
                        run_one(fill(argv, small, Path(tmp) / "out"), Path(tmp) / "out")
    results: dict = {}
    loads = [w for w in workloads(peer) if not args.only or w.name in args.only]
    plan = [(w, 0) for w in loads if w.fixed_data] + [(w, n) for n in sizes for w in loads if not w.fixed_data]
    for w, n in plan:
        d = make_data(n) if n else ROOT / "examples"
        if any(not (d / p).exists() for p in w.needs) or (w.base[0] == str(DEBIAN_PY) and not DEBIAN_PY.exists()):
            print(f"{w.title}: skipped (needs {', '.join(w.needs) or DEBIAN_PY})")
            continue
        stats = results.setdefault((w.name, n), Stats())
        label = f"{n:>9,}" if n else "  example"
        with tempfile.TemporaryDirectory(prefix="converter-bench-") as tmp:
            o = Path(tmp) / "out"
            for rep in range(max(reps, w.min_reps)):
                order = ("tool", "base") if rep % 2 == 0 else ("base", "tool")
                for who in order:
                    r = run_one(fill(w.tool if who == "tool" else w.base, d, o), o)
                    getattr(stats, who).append(r)
                    rate = f"{n / r.wall:>11,.0f} rec/s" if n else " " * 17
                    print(f"{label} {w.name:<17} {who:<4} rep {rep + 1}: {r.wall:7.2f} s (cpu {r.cpu:6.2f} s) "
                          f"{rate}  peak RSS {r.rss_mb:6.1f} MB, anon {r.anon_mb:6.1f} MB", flush=True)
                if w.same_output and stats.tool[-1].stdout != stats.base[-1].stdout:
                    raise SystemExit(f"{w.name}: the two loops disagree: {stats.tool[-1].stdout!r} "
                                     f"vs {stats.base[-1].stdout!r}")
    print()
    table = render(results, loads, sizes)
    print(table)
    print()
    verdicts = targets(results, loads, sizes)
    for line in verdicts:
        print(line)
    met = sum(line.startswith("PASS") for line in verdicts)
    print(f"\n{met} of {len(verdicts)} targets met")
    if args.json:
        args.json.write_text(json.dumps({f"{k[0]}@{k[1]}": {"tool": [vars(r) for r in v.tool],
                                                           "base": [vars(r) for r in v.base]}
                                         for k, v in results.items()}, indent=1))
    return 0


_LOG_LINE = re.compile(r"^\s*(?P<n>[\d,]+|example) (?P<name>\S+)\s+(?P<who>tool|base) rep \d+:\s+(?P<wall>[\d.]+) s "
                       r"\(cpu\s+(?P<cpu>[\d.]+) s\).*peak RSS\s+(?P<rss>[\d.]+) MB, anon\s+(?P<anon>[\d.]+) MB")


def from_log(path: Path, only=None) -> int:
    """The table and verdicts of a run, rebuilt from the per-run lines it printed."""
    results: dict = {}
    for line in path.read_text().splitlines():
        m = _LOG_LINE.match(line)
        if not m:
            continue
        n = 0 if m["n"] == "example" else int(m["n"].replace(",", ""))
        run = Run(float(m["wall"]), float(m["rss"]), float(m["anon"]), "", float(m["cpu"]))
        getattr(results.setdefault((m["name"], n), Stats()), m["who"]).append(run)
    sizes = sorted({n for _, n in results if n})
    names = {name for name, _ in results}
    ws = [w for w in workloads(peer_sqlite_utils()) if w.name in names and (not only or w.name in only)]
    print(render(results, ws, sizes))
    print()
    verdicts = targets(results, ws, sizes)
    for line in verdicts:
        print(line)
    print(f"\n{sum(v.startswith('PASS') for v in verdicts)} of {len(verdicts)} targets met")
    return 0


def _median(runs, attr):
    return statistics.median(getattr(r, attr) for r in runs)


def render(results: dict, ws: list, sizes: list) -> str:
    """The markdown results table: medians, ratios and the memory growth."""
    rows = ["| workload | records | tool s | tool cpu s | tool peak RSS MB (anon) | baseline | base s | base cpu s | "
            "base peak RSS MB (anon) | time ratio | cpu ratio | target |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for w in ws:
        for n in [0, *sizes]:
            s = results.get((w.name, n))
            if not s or not s.tool:
                continue
            tw, bw = _median(s.tool, "wall"), _median(s.base, "wall")
            tc, bc = _median(s.tool, "cpu"), _median(s.base, "cpu")
            tm, ta = max(r.rss_mb for r in s.tool), max(r.anon_mb for r in s.tool)
            bm, ba = max(r.rss_mb for r in s.base), max(r.anon_mb for r in s.base)
            rows.append(f"| {w.title} | {f'{n:,}' if n else 'example'} | {tw:.2f} | {tc:.2f} | {tm:.0f} ({ta:.0f}) | "
                        f"{w.base_name} | {bw:.2f} | {bc:.2f} | {bm:.0f} ({ba:.0f}) | {tw / bw:.2f}x | "
                        f"{tc / bc if bc else 0:.2f}x | {w.target_note or 'report'} |")
    if len(sizes) > 1:
        small, big = min(sizes), max(sizes)
        rows.append("")
        rows.append(f"Peak memory of this tool from {small:,} to {big:,} records, RSS (anonymous), and the "
                    f"baseline's:")
        rows.append("")
        for w in ws:
            a, b = results.get((w.name, small)), results.get((w.name, big))
            if a and b and a.tool and b.tool:
                def peak(runs, attr):
                    return max(getattr(r, attr) for r in runs)
                kind = "streaming" if w.streaming else "loads the whole input, as its baseline does"
                rows.append(
                    f"- {w.title} ({kind}): {peak(a.tool, 'rss_mb'):.0f} ({peak(a.tool, 'anon_mb'):.0f}) -> "
                    f"{peak(b.tool, 'rss_mb'):.0f} ({peak(b.tool, 'anon_mb'):.0f}) MB; baseline "
                    f"{peak(a.base, 'rss_mb'):.0f} ({peak(a.base, 'anon_mb'):.0f}) -> "
                    f"{peak(b.base, 'rss_mb'):.0f} ({peak(b.base, 'anon_mb'):.0f}) MB")
    return "\n".join(rows)


FLAT_FACTOR, FLAT_SLACK_MB = 1.25, 8  # "flat": the peak grows by at most this from the smallest size


def targets(results: dict, ws: list, sizes: list) -> list[str]:
    """One line per target: PASS or FAIL, the measured figure and the target."""
    lines = []

    def verdict(ok, what, measured, target):
        lines.append(f"{'PASS' if ok else 'FAIL'}  {what}: {measured} (target {target})")

    for w in ws:
        for n in [0, *sizes]:
            s = results.get((w.name, n))
            if not s or not s.tool:
                continue
            where = f"{w.title} at {n:,} records" if n else w.title
            ratio = _median(s.tool, "wall") / _median(s.base, "wall")
            cpu_ratio = _median(s.tool, "cpu") / _median(s.base, "cpu") if _median(s.base, "cpu") else ratio
            if w.target is not None:  # what users wait for: wall time (sqlite-utils waits on the disk)
                verdict(ratio <= w.target, where, f"time {ratio:.2f}x (CPU {cpu_ratio:.2f}x)", f"<= {w.target}x")
            if w.cpu_target is not None:
                cpu = _median(s.tool, "cpu") / _median(s.base, "cpu")
                verdict(cpu <= w.cpu_target, where, f"CPU {cpu:.2f}x ({_median(s.tool, 'cpu') * 1000:.0f} ms vs "
                        f"{_median(s.base, 'cpu') * 1000:.0f} ms)", f"<= {w.cpu_target}x")
            if w.mem_target is not None:
                mem = max(r.rss_mb for r in s.tool) / max(r.rss_mb for r in s.base)
                verdict(mem <= w.mem_target, where, f"peak memory {mem:.2f}x", f"<= {w.mem_target}x")
            if w.mem_limit_mb is not None:
                mb = max(r.rss_mb for r in s.tool)
                verdict(mb < w.mem_limit_mb, where, f"peak RSS {mb:.0f} MB", f"< {w.mem_limit_mb:.0f} MB")
        if len(sizes) > 1 and not w.fixed_data:
            small, big = min(sizes), max(sizes)
            a, b = results.get((w.name, small)), results.get((w.name, big))
            if not (a and b and a.tool and b.tool):
                continue
            pa, pb = max(r.anon_mb for r in a.tool), max(r.anon_mb for r in b.tool)
            if w.streaming:
                verdict(pb <= pa * FLAT_FACTOR + FLAT_SLACK_MB, f"{w.title}: memory flat",
                        f"anon {pa:.0f} MB at {small:,} -> {pb:.0f} MB at {big:,}",
                        f"<= {FLAT_FACTOR}x + {FLAT_SLACK_MB} MB")
            if w.slope_limit is not None:
                slope = max(0.0, (pb - pa) * 2**20 / (big - small))
                verdict(slope <= w.slope_limit, f"{w.title}: memory per record", f"{slope:.1f} B/record",
                        f"<= {w.slope_limit:.0f} B/record")
    return lines


if __name__ == "__main__":
    sys.exit(main())
