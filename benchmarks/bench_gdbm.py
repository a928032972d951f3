"""Benchmark: the pure-Python gdbm reader against the C library iterating the same file.

    /work/venv/bin/python benchmarks/bench_gdbm.py [RECORDS] [ROUNDS]

Makes a database of RECORDS (default 1,000,000) records with Debian's
/usr/bin/python3 (dbm.gnu) in a temporary directory, then alternates ROUNDS
(default 3) runs of

* pure: plugins/gdbm.py's GdbmFile under /work/venv/bin/python (no _gdbm there);
* C: ``k = db.firstkey(); while k: v = db[k]; k = db.nextkey(k)`` under /usr/bin/python3.

Each run is a fresh process; the time printed is measured inside it around
open + full iteration (process start-up excluded; the wall time of the whole
process is printed too).  Both loops touch every key and value.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PURE_PY = "/work/venv/bin/python"
C_PY = "/usr/bin/python3"

MAKE = r"""
import dbm.gnu, random, sys
n = int(sys.argv[2])
rng = random.Random(1)
db = dbm.gnu.open(sys.argv[1], 'nf')
for i in range(n):
    db[b'key-%d' % i] = b'v' * rng.randrange(5, 120)
db.close()
"""

PURE = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
t0 = time.perf_counter()
from plugins.gdbm_file import GdbmFile
n = size = 0
with GdbmFile(sys.argv[1]) as db:
    for k, v in db:
        n += 1
        size += len(v)
print(time.perf_counter() - t0, n, size)
"""

C_LOOP = r"""
import sys, time
import dbm.gnu
t0 = time.perf_counter()
db = dbm.gnu.open(sys.argv[1], 'r')
n = size = 0
k = db.firstkey()
while k:
    v = db[k]
    n += 1
    size += len(v)
    k = db.nextkey(k)
db.close()
print(time.perf_counter() - t0, n, size)
"""


def run(argv):
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, check=True, text=True).stdout.split()
    wall = time.perf_counter() - t0
    return float(out[0]), int(out[1]), int(out[2]), wall


def main():
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        t0 = time.perf_counter()
        subprocess.run([C_PY, "-c", MAKE, path, str(records)], check=True)
        print(f"made {records:,} records in {time.perf_counter() - t0:.1f} s; "
              f"file {os.path.getsize(path) / 1e6:.1f} MB")
        pure, c = [], []
        for r in range(rounds):
            p = run([PURE_PY, "-c", PURE, path, ROOT])
            q = run([C_PY, "-c", C_LOOP, path])
            assert p[1:3] == q[1:3] == (records, p[2]), (p, q)
            pure.append(p)
            c.append(q)
            print(f"round {r + 1}: pure {p[0]:.3f} s (process {p[3]:.3f} s)   "
                  f"C {q[0]:.3f} s (process {q[3]:.3f} s)")
        mp = statistics.median(x[0] for x in pure)
        mc = statistics.median(x[0] for x in c)
        print(f"median: pure {mp:.3f} s, C {mc:.3f} s, pure/C = {mp / mc:.2f}x "
              f"({records / mp / 1e6:.2f} M records/s pure)")


if __name__ == "__main__":
    main()
