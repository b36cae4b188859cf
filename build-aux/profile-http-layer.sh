#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The HTTP layer's share of a webhook (issue 17, item 2): tests/bench/proto-http-layer answering
# the Echobell POST with libsoup's SoupServer (as the relay does) and with the prototype reader on
# the relay's epoll set, the webhook's own work left out of both. Prints, per mode:
#  - instructions per request (callgrind; N requests one at a time on one keep-alive connection),
#  - requests/s and the server's CPU time per request under `wrk -t1 -c32 -d5s`.
# Usage: build-aux/profile-http-layer.sh [BUILD_DIR] [N]
set -eu
BUILD=${1:-_build-normal}
N=${2:-2000}
OUT=${OUT:-/tmp/profile-http-layer}
PROTO="$BUILD/tests/bench/proto-http-layer"
[ -x "$PROTO" ] || { echo "build $PROTO first (meson compile -C $BUILD)" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  i=0
  until /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1',$1))" 2>/dev/null; do
    i=$((i+1)); [ $i -lt 600 ] || { echo "server did not start" >&2; exit 1; }
    sleep 0.1
  done
}
cat >"$OUT/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"server_name":"Production","cpu_usage":95}'
wrk.headers["Content-Type"] = "application/json"
EOF
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for mode in soup raw; do
  port=$(free_port)
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/$mode.callgrind" \
    "$PROTO" "$mode" "$port" >"$OUT/$mode.log" 2>&1 &
  vg=$!
  wait_port "$port"
  /usr/bin/python3 - "$port" "$N" "$vg" <<'EOF'
import http.client, subprocess, sys
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = b'{"server_name":"Production","cpu_usage":95}'
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/t/x", body, {"Content-Type": "application/json"}); c.getresponse().read()
subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
for _ in range(n):
    c.request("POST", "/t/x", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
EOF
  kill -TERM "$vg"; wait "$vg" 2>/dev/null || true
  total=$(callgrind_annotate "$OUT/$mode.callgrind" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}')
  echo "$mode: $((total / N)) instructions per request (callgrind, $N requests)"

  port=$(free_port)
  "$PROTO" "$mode" "$port" >>"$OUT/$mode.log" 2>&1 &
  srv=$!
  wait_port "$port"
  before=$(cpu_ticks "$srv")
  wrk -t1 -c32 -d5s -s "$OUT/post.lua" "http://127.0.0.1:$port/t/x" >"$OUT/$mode.wrk"
  after=$(cpu_ticks "$srv")
  kill -TERM "$srv"; wait "$srv" 2>/dev/null || true
  /usr/bin/python3 - "$OUT/$mode.wrk" "$before" "$after" "$mode" <<'EOF'
import os, re, sys
text = open(sys.argv[1]).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
ticks = int(sys.argv[3]) - int(sys.argv[2])
cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / total
print(f"{sys.argv[4]}: {rate:,.0f} requests/s, server CPU {cpu_us:.1f} µs per request (wrk -t1 -c32 -d5s)")
EOF
done
