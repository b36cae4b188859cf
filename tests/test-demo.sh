#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The README's first command as a new user meets it: build-aux/run-demo.sh opens the app's
# window subscribed to the demo channel, the printed curl line rings it (a pop-up on the
# notification server), and Ctrl+C leaves nothing behind: no process, no profile, nothing in
# $HOME. Runs on its own Xvfb display (so another test's window cannot stand in for the demo's)
# and on the private bus of build-aux/with-dbusmock.sh. TAP output.
set -uo pipefail

if [ "${TOCSIN_DEMO_TEST_XVFB:-}" != 1 ]; then
  TOCSIN_DEMO_TEST_XVFB=1 exec xvfb-run -a -s "-screen 0 1280x1024x24" "$0" "$@"
fi

top=${TOCSIN_SOURCE_ROOT:?run through meson test}
build=${TOCSIN_BUILD_ROOT:?run through meson test}
work=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-test-demo.XXXXXX")
home="$work/home"
mkdir -p "$home"
out="$work/demo.out"
n=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$out" 2>/dev/null; }
finish() { echo "1..$n"; rm -rf "$work"; exit "${1:-0}"; }

echo "# demo with HOME=$home"
# A user's environment: no XDG overrides, a HOME of their own, the notification server's bus,
# and no G_DEBUG=fatal-warnings from meson (a user's app does not die of a warning: on a loaded
# machine the accessibility registry once dropped the app's Embed call, and GTK's CRITICAL
# "Unable to register the application" then killed the demo's window; the other UI tests keep
# fatal warnings).
env -u XDG_DATA_HOME -u XDG_CONFIG_HOME -u XDG_CACHE_HOME -u XDG_STATE_HOME \
  -u GSETTINGS_BACKEND -u GSETTINGS_SCHEMA_DIR -u TOCSIN_LOCALEDIR -u G_DEBUG \
  HOME="$home" TMPDIR="$work" TOCSIN_BUILD_DIR="$build" TOCSIN_DEMO_PORT=0 \
  "$top/build-aux/run-demo.sh" >"$out" 2>&1 &
demo=$!

for _ in $(seq 600); do
  grep -q "Press Ctrl+C to stop" "$out" && break
  kill -0 "$demo" 2>/dev/null || break
  sleep 0.1
done
if grep -q "Press Ctrl+C to stop" "$out"; then
  pass "the demo says it runs"
else
  fail "the demo says it runs"
  kill "$demo" 2>/dev/null
  finish 1
fi

app_pid=$(pgrep -f -- "--gapplication-app-id=io.github.tocsin.Tocsin.Demo$" | head -n 1)
window=""
for _ in $(seq 100); do
  for id in $(xwininfo -root -tree 2>/dev/null | sed -n 's/^ *\(0x[0-9a-f]*\) "Tocsin".*/\1/p'); do
    pid=$(xprop -id "$id" _NET_WM_PID 2>/dev/null | sed -n 's/.* = //p')
    [ -n "$pid" ] && [ "$pid" = "$app_pid" ] && window=$id
  done
  [ -n "$window" ] && break
  sleep 0.1
done
if [ -n "$window" ] && xwininfo -id "$window" | grep -q "Map State: IsViewable"; then
  pass "the app's window is on screen"
else
  fail "the app's window is on screen (app pid '${app_pid}')"
fi

webhook=$(sed -n "s|^  curl '\(http://[^?]*\)?server_name.*|\1|p" "$out" | head -n 1)
answer=$(curl -s "$webhook?server_name=Production&cpu_usage=95")
case "$answer" in
  *'"title":"Alerte serveur Production"'*) pass "the printed curl line rings the channel" ;;
  *) fail "the printed curl line rings the channel (answer: $answer)" ;;
esac

popup=""
for _ in $(seq 100); do
  popup=$(gdbus call --session --dest org.freedesktop.Notifications \
            --object-path /org/freedesktop/Notifications \
            --method org.freedesktop.DBus.Mock.GetCalls 2>/dev/null |
          grep -o "Alerte serveur Production" | head -n 1)
  [ -n "$popup" ] && break
  sleep 0.1
done
if [ -n "$popup" ]; then
  pass "a pop-up says \"Alerte serveur Production\""
else
  fail "a pop-up says \"Alerte serveur Production\""
fi

# Ctrl+C in a terminal reaches the whole foreground group; here the script gets SIGINT (a
# background job ignores SIGINT, so TERM plays it) and the app and relay get it from it.
profile=$(sed -n 's|^Everything is in \(.*\), removed when you stop\.$|\1|p' "$out")
kill -TERM "$demo"
wait "$demo"
gone=1
for _ in $(seq 100); do
  gone=1
  pgrep -f -- "--gapplication-app-id=io.github.tocsin.Tocsin.Demo" >/dev/null && gone=0
  pgrep -f -- "tocsin-relay serve --listen=127.0.0.1:0 --data-dir=$profile" >/dev/null && gone=0
  [ $gone = 1 ] && break
  sleep 0.1
done
if [ $gone = 1 ] && [ -n "$profile" ] && [ ! -e "$profile" ]; then
  pass "stopping leaves no process and no profile"
else
  fail "stopping leaves no process and no profile ($profile)"
fi

left=$(find "$home" -mindepth 1 | head -n 5)
if [ -z "$left" ]; then
  pass "nothing was written to \$HOME"
else
  fail "nothing was written to \$HOME (found: $left)"
fi
finish 0
