#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Instructions per webhook of tocsin-relay, counted by callgrind (repeatable on a busy machine).
# Usage: build-aux/profile-ingest.sh [BUILD_DIR] [WEBHOOKS] [SUBSCRIBERS]
# One channel (the Echobell templates), SUBSCRIBERS WebSocket subscribers, WEBHOOKS POSTs of the
# Echobell body one at a time on one keep-alive connection; collection covers only the webhooks
# and their delivery. Prints Ir per webhook and the top inclusive functions; the callgrind file
# stays in $OUT (default /tmp/profile-ingest).
set -eu
BUILD=${1:-_build-normal}
N=${2:-2000}
SUBS=${3:-10}
OUT=${OUT:-/tmp/profile-ingest}
HERE=$(cd "$(dirname "$0")" && pwd)
RELAY="$BUILD/src/relay/tocsin-relay"
rm -rf "$OUT"; mkdir -p "$OUT/data"
"$RELAY" channel create --data-dir="$OUT/data" --name=bench \
  --title='Alerte serveur {{server_name}}' \
  --body="L'utilisation du CPU a atteint {{cpu_usage}}%" --json >"$OUT/channel.json"
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" \
  "$OUT/channel.json" "$1"; }
TRIGGER=$(field trigger_token); SUBSCRIBE=$(field subscribe_token)
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
  "$RELAY" serve --listen=127.0.0.1:"$PORT" --data-dir="$OUT/data" \
  --rate=1000000 --burst=1000000 >"$OUT/relay.log" 2>&1 &
VG=$!
i=0
until /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT))" \
    2>/dev/null; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "relay did not start" >&2; cat "$OUT/relay.log"; exit 1; }
  sleep 0.1
done
/usr/bin/python3 "$HERE/profile-ingest.py" "$PORT" "$TRIGGER" "$SUBSCRIBE" "$N" "$SUBS" "$VG" ||
  { kill "$VG"; exit 1; }
kill -TERM "$VG"; wait "$VG" || true
TOTAL=$(callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}')
echo "total Ir $TOTAL, webhooks $N: $((TOTAL / N)) Ir per webhook"
callgrind_annotate --inclusive=yes "$OUT/callgrind.out" 2>/dev/null |
  sed -n '/^Ir/,$p' | head -${TOP:-45} >"$OUT/top.txt"
cat "$OUT/top.txt"
