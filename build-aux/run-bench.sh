#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The benchmarks of docs/performance.md, from a clean clone on Debian 12: installs what is
# missing (nginx-light with nchan, pushpin, wrk, node-ws...), builds, runs
# `meson test --benchmark` (tocsin-relay against nginx+nchan and pushpin in the same run; the
# relay on PostgreSQL with 1, 2, 3 nodes and --workers=2 against the SQLite relay, with its own
# PostgreSQL in a temp dir; then the app's core) and prints the results table. About 15 minutes
# on 2 cores (the first run also generates a 1,000,000-record history, which later runs reuse).
#
#   build-aux/run-bench.sh                     # everything
#   build-aux/run-bench.sh app-history         # extra arguments go to `meson test --benchmark`
#   build-aux/run-bench.sh relay-cluster       # only the PostgreSQL cluster rows (issue 16)
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

"$top/build-aux/install-deps.sh" bench || exit 1

dir=${TOCSIN_BENCH_BUILD:-"$top/_build-bench"}
if [ -f "$dir/build.ninja" ]; then
  meson setup --reconfigure "$dir" >/dev/null || exit 1
else
  meson setup "$dir" -Dbuildtype=debugoptimized || exit 1
fi
meson compile -C "$dir" || { echo "The build failed." >&2; exit 1; }

# 10,000 subscribers need 10,000 descriptors in the server and as many in the generator; the
# idle population's 50,000 need 51,000 (as root the hard limit can be raised here; otherwise
# that row is left out and the results say so).
ulimit -Hn 131072 2>/dev/null || true
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 12000 ]; then
  echo "run-bench.sh: the open files limit is $hard; the fan-out needs about 11,000." >&2
  echo "  Raise it (e.g. 'ulimit -Hn 65536' as root, or LimitNOFILE=) and run again." >&2
elif [ "$hard" != unlimited ] && [ "$hard" -lt 51000 ]; then
  echo "run-bench.sh: the open files limit is $hard; 50,000 idle subscribers are left out." >&2
fi
ulimit -n "$hard" 2>/dev/null || true

results="$dir/tests/bench/results"
rm -f "$results"/*.json
meson test -C "$dir" --benchmark --num-processes 1 --print-errorlogs "$@"
status=$?

echo
echo "== Results (ratios are Tocsin ÷ peer; see docs/performance.md for what each means)"
/usr/bin/python3 "$top/tests/bench/bench-report.py" "$results"
exit $status
