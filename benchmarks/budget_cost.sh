#!/bin/bash
# The resource budget's cost (issue 9), counted in instructions with callgrind, which a busy
# machine does not disturb: the whole `python -m converter` process at 100,000 records, for two
# commits side by side.
#
#   bash benchmarks/budget_cost.sh BEFORE AFTER     (e.g. 5eef153^ 799bda9)
#
# Needs valgrind, the benchmark data of benchmarks/run.py (made by a run with 100k records) and
# the tool's venv (.venv). Each commit is checked out in a temporary worktree and run from it.
set -euo pipefail
before=${1:?BEFORE commit}; after=${2:?AFTER commit}
root=$(cd "$(dirname "$0")/.." && pwd)
D=${XDG_CACHE_HOME:-$HOME/.cache}/converter-bench/data-100000-v3
PY=$root/.venv/bin/python
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/A" >/dev/null 2>&1 || true;
      git -C "$root" worktree remove --force "$work/B" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add -q --detach "$work/A" "$before"
git -C "$root" worktree add -q --detach "$work/B" "$after"
for v in A B; do ln -s ../plugins "$work/$v/converter/plugins"; done  # the installed layout
O=$work/out; mkdir -p "$O"
declare -A W=(
 [pickle-json]="$D/people.pkl $O/X.json"
 [gdbm-sqlite]="$D/people.gdbm $O/X.sqlite"
 [sqlite-jsonl]="$D/people.sqlite $O/X.jsonl"
 [json-sqlite]="$D/people-object.json $O/X.sqlite"
 [dumb-sqlite3]="$D/people-dumb $O/X.sqlite3 --to dbm.sqlite3"
)
unset PYTHONDONTWRITEBYTECODE
export PYTHONHASHSEED=0  # the same hashes in every run: counts that repeat
for w in pickle-json gdbm-sqlite sqlite-jsonl json-sqlite dumb-sqlite3; do
  declare -A n=()
  for v in A B; do
    rm -rf "${O:?}"/*
    env PYTHONPATH="$work/$v" CONVERTER_LOAD_PLUGINS= "$PY" -m converter ${W[$w]} -q  # warm the bytecode
    rm -rf "${O:?}"/*
    n[$v]=$(env PYTHONPATH="$work/$v" CONVERTER_LOAD_PLUGINS= valgrind --tool=callgrind \
            --callgrind-out-file=/dev/null "$PY" -m converter ${W[$w]} -q 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  done
  awk -v w="$w" -v a="${n[A]}" -v b="${n[B]}" 'BEGIN { printf "%-13s %14.0f %14.0f  %+.2f%%\n", w, a, b, (b - a) * 100 / a }'
done
