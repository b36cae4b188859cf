#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The whole test suite, from a clean clone of Tocsin on Debian 12: installs what is missing,
# builds twice (normal, and ASan+UBSan), runs every suite headless (Xvfb, a private D-Bus
# session, GSK_RENDERER=cairo), then the relay's tests once more with every relay under
# valgrind (build-aux/run-valgrind.sh, on the normal build), and ends with one line:
# "N passed, N failed[, N skipped]". In that line the valgrind run counts its tests, plus one
# for the check of valgrind's logs (no memory error, no definite leak in any relay), and the
# package test (kind "package", which CI adds) counts as one test.
#
#   build-aux/run-tests.sh                 # all three: normal sanitize valgrind
#   TOCSIN_BUILDS="normal sanitize" build-aux/run-tests.sh   # skip valgrind (or any of them)
#   TOCSIN_BUILDS="normal sanitize valgrind package" build-aux/run-tests.sh   # as CI: then the
#       Debian packages built, installed, smoke-tested and purged (build-aux/run-package-test.sh;
#       root or sudo; skipped when tocsin is already installed)
#   TOCSIN_SLOW=1 build-aux/run-tests.sh   # also suite slow: the minutes-long reliability runs
#   build-aux/run-tests.sh --suite relay   # extra arguments go to `meson test`
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

"$top/build-aux/install-deps.sh" || exit 1

builds=${TOCSIN_BUILDS:-"normal sanitize valgrind"}
# Suite slow (the 2-minute network cut, 30 s of load with three relay kills...) only on request.
slow=(--no-suite slow)
[ "${TOCSIN_SLOW:-0}" = 1 ] && slow=()
jobs=$(nproc 2>/dev/null || echo 2)
export GSK_RENDERER=cairo

passed=0; failed=0; skipped=0; status=0
for kind in $builds; do
  if [ "$kind" = package ]; then
    echo "== Building, installing and trying the Debian packages (build-aux/run-package-test.sh)"
    "$top/build-aux/run-package-test.sh"
    case $? in
      0) passed=$((passed + 1)) ;;
      77) skipped=$((skipped + 1)) ;;
      *) failed=$((failed + 1)); status=1 ;;
    esac
    continue
  fi
  dir="$top/_build-$kind"
  case "$kind" in
    normal) opts=() ;;
    sanitize) opts=(-Db_sanitize=address,undefined -Db_lundef=false) ;;
    valgrind) dir="$top/_build-normal"; opts=() ;;  # the normal build's relay, under valgrind
    *) echo "unknown build '$kind'" >&2; exit 2 ;;
  esac
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null || { status=1; continue; }
  else
    meson setup "$dir" "${opts[@]}" || { status=1; continue; }
  fi
  if ! meson compile -C "$dir"; then
    echo "The $kind build failed." >&2
    status=1; failed=$((failed + 1)); continue
  fi

  testlog="$dir/meson-logs/testlog.json"
  if [ "$kind" = valgrind ]; then
    echo "== Running the relay's tests with every relay under valgrind (normal build)"
    testlog="$dir/meson-logs/testlog-valgrind.json"
    rm -f "$testlog"
    xvfb-run -a -s "-screen 0 1280x1024x24" \
      dbus-run-session -- "$top/build-aux/run-valgrind.sh" "$dir" --num-processes "$jobs" "$@"
    rc=$?
    [ $rc -eq 0 ] || status=1
    # Bit 2: valgrind's logs show an error or a definite leak; 4: it could not run.
    if [ $rc -eq 4 ] || [ $((rc & 2)) -ne 0 ]; then
      failed=$((failed + 1))
    else
      passed=$((passed + 1))
    fi
    [ -f "$testlog" ] || continue
  else
    echo "== Running the tests ($kind build)"
    xvfb-run -a -s "-screen 0 1280x1024x24" \
      dbus-run-session -- meson test -C "$dir" --print-errorlogs --num-processes "$jobs" \
        "${slow[@]}" "$@"
    [ $? -eq 0 ] || status=1
  fi

  # Count from meson's own results: one JSON object per test.
  counts=$(/usr/bin/python3 - "$testlog" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
  read -r p f s <<<"$counts"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done

line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ] || status=1
exit $status
