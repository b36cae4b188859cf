#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Runs the product from a clean clone on Debian 12: builds, starts a local relay on its embedded
# SQLite, creates a demo channel, starts the app subscribed to it, and prints the curl lines
# that ring it. Ctrl+C stops both.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/build-aux/install-deps.sh"

build="$top/_build-normal"
[ -f "$build/build.ninja" ] || meson setup "$build"
meson compile -C "$build"

port=${TOCSIN_DEMO_PORT:-8808}
state="${XDG_STATE_HOME:-$HOME/.local/state}/tocsin-demo"
mkdir -p "$state/relay"
chmod 700 "$state" "$state/relay"
relay="$build/src/relay/tocsin-relay"
app="$build/src/app/tocsin"
base="http://127.0.0.1:$port"

"$relay" serve --listen="127.0.0.1:$port" --data-dir="$state/relay" --public-url="$base" \
  >"$state/relay.out" 2>"$state/relay.log" &
relay_pid=$!
cleanup() { kill "$relay_pid" "${app_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for _ in $(seq 100); do
  grep -q "Listening on" "$state/relay.out" 2>/dev/null && break
  kill -0 "$relay_pid" 2>/dev/null || { cat "$state/relay.log" >&2; exit 1; }
  sleep 0.1
done

# One demo channel, made once and reused on later runs.
if [ ! -s "$state/channel.json" ]; then
  "$relay" channel create --data-dir="$state/relay" --public-url="$base" --json \
    --name="Demo" \
    --title="Alerte serveur {{server_name}}" \
    --body="L'utilisation du CPU a atteint {{cpu_usage}}%" >"$state/channel.json"
fi
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$state/channel.json" "$1"; }
webhook=$(field webhook_url)
subscribe=$(field subscribe_url)

export GSETTINGS_SCHEMA_DIR="$build/data"
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "No display found: starting the app under Xvfb (you will not see the window)." >&2
  xvfb-run -a "$app" --subscribe="$subscribe" &
else
  "$app" --subscribe="$subscribe" &
fi
app_pid=$!

cat <<MSG

Tocsin is running: relay at $base (data in $state/relay), app subscribed to "Demo".
Subscribe link: $subscribe

Ring it with GET:
  curl '$webhook?server_name=Production&cpu_usage=95'
Ring it with POST:
  curl -X POST -H 'Content-Type: application/json' \\
    -d '{"server_name": "Production", "cpu_usage": 95, "externalLink": "https://example.com/alerts/123"}' \\
    '$webhook'

Press Ctrl+C to stop.
MSG
wait "$app_pid"
