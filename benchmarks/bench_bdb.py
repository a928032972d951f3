"""Benchmark: the pure-Python Berkeley DB reader against the bsddb3 C cursor loop.

Generates a database of N records (default 1,000,000) with Debian's /usr/bin/python3 and
bsddb3 in a temporary directory, then times, alternating, a full read with
plugins.bdb_file.BerkeleyDB under /work/venv/bin/python and `c = db.cursor(); r = c.first();
while r: r = c.next()` under /usr/bin/python3. Prints wall times and the ratio.

    /work/venv/bin/python benchmarks/bench_bdb.py [--records N] [--type hash|btree] [--rounds R]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN_PY = "/usr/bin/python3"
PURE_PY = "/work/venv/bin/python"

MAKE = r"""
import sys
from bsddb3 import db
path, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = db.DB()
d.set_cachesize(0, 64 << 20)
d.open(path, None, db.DB_HASH if kind == "hash" else db.DB_BTREE, db.DB_CREATE)
for i in range(n):
    d.put(b"key:%09d" % i, b"value-%d-" % i * 3)
d.close()
"""

C_LOOP = r"""
import sys, time
from bsddb3 import db
t = time.perf_counter()
d = db.DB(); d.open(sys.argv[1], None, db.DB_UNKNOWN, db.DB_RDONLY)
c = d.cursor(); r = c.first(); n = 0
while r:
    n += 1
    r = c.next()
c.close(); d.close()
print(n, time.perf_counter() - t)
"""

PURE_LOOP = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from plugins.bdb_file import BerkeleyDB
t = time.perf_counter()
n = 0
with BerkeleyDB(sys.argv[1]) as b:
    for _ in b:
        n += 1
print(n, time.perf_counter() - t)
"""


def run(py, code, *args):
    out = subprocess.check_output([py, "-c", code, *args], text=True)
    n, secs = out.split()
    return int(n), float(secs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--type", choices=("hash", "btree"), default="hash")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(DEBIAN_PY):
        sys.exit("needs Debian's /usr/bin/python3 with bsddb3")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        t = time.perf_counter()
        subprocess.check_call([DEBIAN_PY, "-c", MAKE, path, args.type, str(args.records)])
        print(f"made {args.type} database of {args.records} records, "
              f"{os.path.getsize(path) / 1e6:.1f} MB, in {time.perf_counter() - t:.1f} s")
        pure, c = [], []
        for _ in range(args.rounds):
            n1, s1 = run(PURE_PY, PURE_LOOP, path, ROOT)
            n2, s2 = run(DEBIAN_PY, C_LOOP, path)
            if n1 != n2:
                sys.exit(f"record counts differ: pure {n1}, C {n2}")
            pure.append(s1)
            c.append(s2)
            print(f"pure {s1:.3f} s   C cursor {s2:.3f} s")
        print(f"best: pure {min(pure):.3f} s, C cursor {min(c):.3f} s, "
              f"ratio {min(pure) / min(c):.2f}x")


if __name__ == "__main__":
    main()
