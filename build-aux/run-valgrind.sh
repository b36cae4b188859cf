#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Runs the relay's tests once more with every tocsin-relay they start (servers and CLI
# commands) under valgrind, then reads valgrind's logs: a relay with a memory error or a
# definite leak fails the run, and its log is shown.
#
#   build-aux/run-valgrind.sh [BUILD_DIR] [meson test arguments...]
#
# BUILD_DIR is an existing normal (not ASan) build, _build-normal by default; it is compiled
# first. The other arguments go to `meson test`; unless one of them is a --suite, the tests
# are those of suite 'relay' (DEFAULT_TESTS below). Exit status: bit 1 set when a test
# failed, bit 2 set when a valgrind log shows an error or a definite leak (so 0 is clean,
# 1 tests only, 2 valgrind only, 3 both); 4 when it could not run at all.
#
# Why logs, not exit codes: valgrind's --error-exitcode reaches the test only when the relay
# exits by itself (SIGTERM, or a CLI command). A relay the test kills with SIGKILL on purpose
# (the kill -9 tests, or PR_SET_PDEATHSIG when a test aborts) leaves a log without its
# summary; such a log is counted as "killed" and not judged: it could not have been checked.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$top/_build-normal"}
[ $# -gt 0 ] && shift
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac

if [ ! -f "$dir/build.ninja" ]; then
  echo "run-valgrind.sh: $dir is not a configured build (meson setup $dir)" >&2
  exit 4
fi
# valgrind and ASan cannot share a process.
sanitize=$(/usr/bin/python3 - "$dir/meson-info/intro-buildoptions.json" 2>/dev/null <<'PY'
import json, sys
options = {o["name"]: o["value"] for o in json.load(open(sys.argv[1]))}
print(options.get("b_sanitize", "none"))
PY
)
if [ -n "$sanitize" ] && [ "$sanitize" != none ]; then
  echo "run-valgrind.sh: $dir is built with -Db_sanitize=$sanitize; valgrind needs a" \
    "normal build" >&2
  exit 4
fi
command -v valgrind >/dev/null || { echo "run-valgrind.sh: valgrind is not installed" >&2; exit 4; }
meson compile -C "$dir" >/dev/null || { echo "run-valgrind.sh: the build failed" >&2; exit 4; }

# The whole suite 'relay': every relay code path (store, ingest, api, streams, server, cli,
# tls) and the quick reliability tests (hostile input, kill -9, faults, load, secrets).
# Measured on 2 cores: see docs/security.md, "Checking the relay itself with valgrind".
# 'tight-timeouts': tests whose exact attempt counts rest on 1 s timeouts, which a relay under
# valgrind overruns (tests/meson.build says which).
# 'replay-on-postgres': test-relay-postgres, which runs six of these same programs again on
# PostgreSQL (455 s under valgrind here); the PostgreSQL code paths stay under valgrind through
# test-relay-store-backends, test-cluster-postgres, -standby, -faults and test-relay-health.
DEFAULT_TESTS=(--suite relay --no-suite tight-timeouts --no-suite replay-on-postgres)
tests=("$@")
case " $* " in *" --suite"*) ;; *) tests+=("${DEFAULT_TESTS[@]}") ;; esac

logs="$dir/meson-logs/valgrind"
rm -rf "$logs"
mkdir -p "$logs"

# 97 is no exit status the relay uses, so a CLI test that expects a failure (1, 2) cannot
# mistake valgrind's verdict for the relay's.
# Only definite leaks are errors, and only they are listed: "possibly lost" and "still
# reachable" blocks are GLib's and libsoup's one-time allocations (types, thread pools).
wrapper="valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite"
wrapper="$wrapper --error-exitcode=97 --num-callers=30 --log-file=$logs/relay-%p.log"
export TOCSIN_RELAY_WRAPPER="$wrapper"
# GLib turns its slice allocator into plain malloc under valgrind by itself; say so anyway.
export G_SLICE=always-malloc

# A relay runs about ten times slower under valgrind; the tests' deadlines are meson's.
status=0
start=$(date +%s)
meson test -C "$dir" --logbase testlog-valgrind --timeout-multiplier 6 --print-errorlogs \
  "${tests[@]}" || status=1
elapsed=$(( $(date +%s) - start ))

# Judge each log. A complete one ends with "ERROR SUMMARY: N errors"; with
# --errors-for-leak-kinds=definite a definite leak is one of those errors, and the
# "definitely lost" total is read too, as a second witness.
checked=0; killed=0; bad=0; errors=0; lost=0
for log in "$logs"/relay-*.log; do
  [ -e "$log" ] || continue
  summary=$(grep -E "ERROR SUMMARY: [0-9,]+ errors" "$log" | tail -n 1)
  if [ -z "$summary" ] &&
     ! grep -qE "the 'impossible' happened|VALGRIND INTERNAL ERROR" "$log"; then
    killed=$((killed + 1))
    continue
  fi
  summary=${summary:-"ERROR SUMMARY: 1 errors (valgrind itself failed)"}
  checked=$((checked + 1))
  n=$(sed -E 's/.*ERROR SUMMARY: ([0-9,]+) errors.*/\1/; s/,//g' <<<"$summary")
  d=$(grep -E "definitely lost: [0-9,]+ bytes" "$log" | tail -n 1 |
      sed -E 's/.*definitely lost: ([0-9,]+) bytes.*/\1/; s/,//g')
  d=${d:-0}
  if [ "$n" -gt 0 ] || [ "$d" -gt 0 ]; then
    bad=$((bad + 1)); errors=$((errors + n)); lost=$((lost + d))
    echo
    echo "==== valgrind: $n errors, $d bytes definitely lost in $log"
    # The command line, then everything after valgrind's preamble: the errors, the definite
    # leaks with their stacks, and the summaries.
    grep -m 1 "Command:" "$log"
    sed -n '/^==[0-9]*== Parent PID:/,$p' "$log" | tail -n +2 | head -n 200
  fi
done

echo
echo "valgrind: $((checked + killed)) relay processes: $checked checked, $killed killed by" \
  "their test before valgrind's summary; $bad with errors or definite leaks ($errors errors," \
  "$lost bytes definitely lost); ${elapsed}s"
if [ "$checked" -eq 0 ]; then
  echo "valgrind: no relay exited by itself, so nothing was checked" >&2
  bad=1
fi
[ "$bad" -eq 0 ] || status=$((status | 2))
exit $status
