#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Builds the libFuzzer targets (clang, -Dfuzzing=true) and runs each for SECONDS (default 60),
# starting from its seed corpus in tests/fuzz/corpus/<name>/. Prints the executions of each
# and exits non-zero if any target found a crash, leak or broken invariant; the input that did
# it is kept in OUT/<target>/ (crash-*, leak-*, timeout-*) to replay with
#   BUILD/tests/fuzz/fuzz-<name> OUT/<target>/crash-...
#
# Usage: build-aux/run-fuzzers.sh [SECONDS] [TARGET...]
# Environment: FUZZ_BUILD_DIR (default _build-fuzz), FUZZ_OUT_DIR (default $FUZZ_BUILD_DIR/fuzz-out),
# FUZZ_KEEP_GOING=1 to go on past a crash for the whole time (libFuzzer's fork mode), collecting
# every crash instead of stopping at the first.
set -eu

cd "$(dirname "$0")/.."
build-aux/install-deps.sh fuzz
seconds=${1:-60}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD_DIR:-_build-fuzz}
out=${FUZZ_OUT_DIR:-$build/fuzz-out}

targets=$*
if [ -z "$targets" ]; then
  # One target per tests/fuzz/fuzz-<name>.c.
  targets=$(cd tests/fuzz && ls fuzz-*.c | sed 's/\.c$//' | sort)
fi

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzzing=true -Dapp=false
fi
# Only the fuzzers: the rest of the tree need not build for them to run.
ninja -C "$build" $(for t in $targets; do printf 'tests/fuzz/%s ' "$t"; done)

keep_going=""
if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
  keep_going="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
fi

status=0
summary=""
for target in $targets; do
  name=${target#fuzz-}
  seeds="tests/fuzz/corpus/$name"
  work="$out/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  # New inputs go to a scratch corpus, never into the tree's seeds.
  [ -d "$seeds" ] && cp -R "$seeds/." "$work/corpus/"
  echo "== $target: $seconds s from $(ls "$work/corpus" | wc -l) seeds"
  set +e
  # shellcheck disable=SC2086
  "$build/tests/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$work/" -timeout=10 -rss_limit_mb=2048 $keep_going \
    "$work/corpus" >"$work/log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  if [ -z "$execs" ]; then
    # Fork mode prints no final stats: take the last "#N" status line.
    execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$work/log" | tail -n 1)
  fi
  found=$(ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
  if [ $rc -ne 0 ] || [ -n "$found" ]; then
    status=1
    result="FOUND: $(echo $found) (log: $work/log)"
    grep -E 'invariant broken|ERROR|CRITICAL|WARNING|SUMMARY' "$work/log" | head -n 5 || true
  else
    result="ok"
  fi
  line="$target: ${execs:-?} executions in $seconds s, corpus $(ls "$work/corpus" | wc -l): $result"
  echo "$line"
  summary="$summary$line
"
done

echo
echo "== summary"
printf '%s' "$summary"
exit $status
