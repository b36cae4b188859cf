#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Runs the product from a clean clone on Debian 12: builds, starts a local relay on its embedded
# SQLite, creates a demo channel, opens the app's window subscribed to it, and prints the curl
# lines that ring it. Ctrl+C stops both.
#
# Everything lives in a profile of its own (a temporary folder: the relay's data, the app's
# history, settings and autostart), removed on exit, so the demo never touches your own Tocsin.
# The app runs under its own application id, so it opens its window even when your Tocsin runs.
#
#   TOCSIN_DEMO_PORT=8808   the relay's port (0: any free port)
#   TOCSIN_BUILD_DIR=…      an existing build to use (default: _build-normal, built here)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

build=${TOCSIN_BUILD_DIR:-"$top/_build-normal"}
if [ -z "${TOCSIN_BUILD_DIR:-}" ]; then
  "$top/build-aux/install-deps.sh"
  [ -f "$build/build.ninja" ] || meson setup "$build"
  meson compile -C "$build"
fi

# Without a display the window goes to Xvfb; without a session bus, to a bus of its own (the
# app is a D-Bus-activated GApplication and pops up notifications there).
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "No display found: the app runs under Xvfb (you will not see the window)." >&2
  TOCSIN_BUILD_DIR="$build" exec xvfb-run -a "$0" "$@"
fi
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && [ ! -S "${XDG_RUNTIME_DIR:-/nonexistent}/bus" ]; then
  TOCSIN_BUILD_DIR="$build" exec dbus-run-session -- "$0" "$@"
fi

port=${TOCSIN_DEMO_PORT:-8808}
profile=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-demo.XXXXXX")
chmod 700 "$profile"
mkdir -p "$profile/relay" "$profile/data" "$profile/config" "$profile/cache" "$profile/state"
chmod 700 "$profile/relay"
relay="$build/src/relay/tocsin-relay"
app="$build/src/app/tocsin"
app_id=io.github.tocsin.Tocsin.Demo

relay_pid=""; app_pid=""
cleanup() {
  trap - EXIT
  trap '' INT TERM   # a second Ctrl+C does not cut the clean-up short
  # The app first: Quit flushes its history before the profile goes.
  [ -n "$app_pid" ] && kill -TERM "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null
  [ -n "$relay_pid" ] && kill -TERM "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
  rm -rf "$profile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$relay" serve --listen="127.0.0.1:$port" --data-dir="$profile/relay" \
  >"$profile/relay.out" 2>"$profile/relay.log" &
relay_pid=$!

base=""
for _ in $(seq 100); do
  base=$(sed -n 's|^Listening on \(http://[^ ]*[0-9]\)/\{0,1\}$|\1|p' "$profile/relay.out" 2>/dev/null |
         head -n 1)
  [ -n "$base" ] && break
  if ! kill -0 "$relay_pid" 2>/dev/null; then
    echo "The relay did not start:" >&2
    cat "$profile/relay.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$base" ] || { echo "The relay did not say where it listens." >&2; exit 1; }

"$relay" channel create --data-dir="$profile/relay" --public-url="$base" --json \
  --name="Demo" \
  --title="Alerte serveur {{server_name}}" \
  --body="L'utilisation du CPU a atteint {{cpu_usage}}%" >"$profile/channel.json"
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$profile/channel.json" "$1"; }
webhook=$(field webhook_url)
subscribe=$(field subscribe_url)

# The app's own profile, its build-tree schemas and translations.
export XDG_DATA_HOME="$profile/data" XDG_CONFIG_HOME="$profile/config"
export XDG_CACHE_HOME="$profile/cache" XDG_STATE_HOME="$profile/state"
export GSETTINGS_BACKEND=keyfile GSETTINGS_SCHEMA_DIR="$build/data"
export TOCSIN_LOCALEDIR="$build/po"
"$app" --gapplication-app-id="$app_id" &
app_pid=$!

# The window is open once the app owns its name; then subscribe through it, and wait until the
# subscription is saved (a second `tocsin` hands its command line to the first).
# A slow start (a sanitizer build, a busy machine) gets more time: subscribing before the window
# owns the name would make the subscribing `tocsin` the app itself.
waited=0
until gdbus wait --session --timeout 10 "$app_id" 2>/dev/null; do
  kill -0 "$app_pid" 2>/dev/null || { echo "The app did not start." >&2; exit 1; }
  waited=$((waited + 10))
  if [ "$waited" -ge 120 ]; then
    echo "The app did not open its window within two minutes." >&2
    exit 1
  fi
done
if ! "$app" --gapplication-app-id="$app_id" --subscribe="$subscribe"; then
  echo "The app could not subscribe to the demo channel." >&2
  exit 1
fi

cat <<MSG

Tocsin is running: a relay at $base and the app's window, subscribed to "Demo".
Everything is in $profile, removed when you stop.
Subscribe link: $subscribe

Ring it with GET:
  curl '$webhook?server_name=Production&cpu_usage=95'
Ring it with POST:
  curl -X POST -H 'Content-Type: application/json' \\
    -d '{"server_name": "Production", "cpu_usage": 95, "externalLink": "https://example.com/alerts/123"}' \\
    '$webhook'

Press Ctrl+C to stop.
MSG
wait "$app_pid" || true
