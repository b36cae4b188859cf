#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
# Driver for build-aux/profile-ingest.sh: connects SUBSCRIBERS WebSocket subscribers to the
# channel, turns callgrind's collection on, posts N webhooks one at a time on one keep-alive
# connection, waits until every subscriber has every frame, turns collection off.
import base64, http.client, os, socket, subprocess, sys, threading, time

port, trigger, subscribe, n, nsubs, pid = sys.argv[1:7]
n, nsubs = int(n), int(nsubs)
BODY = b'{"server_name":"Production","cpu_usage":95}'

def ws_connect():
    s = socket.create_connection(("127.0.0.1", int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /s/{subscribe}/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return s, rest

counts = [0] * nsubs
frames = [[] for _ in range(nsubs)]

def reader(i, s, buf):
    while True:
        while True:
            if len(buf) < 2:
                break
            ln = buf[1] & 0x7f
            off = 2
            if ln == 126:
                if len(buf) < 4: break
                ln = int.from_bytes(buf[2:4], "big"); off = 4
            elif ln == 127:
                if len(buf) < 10: break
                ln = int.from_bytes(buf[2:10], "big"); off = 10
            if len(buf) < off + ln:
                break
            if buf[0] & 0x0f == 1:
                counts[i] += 1
                if i == 0 and len(frames[0]) < 3:
                    frames[0].append(buf[off:off + ln])
            buf = buf[off + ln:]
        d = s.recv(65536)
        if not d:
            return
        buf += d

socks = []
for i in range(nsubs):
    s, rest = ws_connect()
    socks.append(s)
    threading.Thread(target=reader, args=(i, s, rest), daemon=True).start()
time.sleep(1.0)
base = list(counts)


subprocess.run(["callgrind_control", "-i", "on", pid], check=True, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
c = http.client.HTTPConnection("127.0.0.1", int(port))
t0 = time.time()
for k in range(n):
    c.request("POST", f"/t/{trigger}", body=BODY, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"webhook {k}: {r.status} {data!r}")
deadline = time.time() + 600
while min(c_ - b for c_, b in zip(counts, base)) < n and time.time() < deadline:
    time.sleep(0.05)
subprocess.run(["callgrind_control", "-i", "off", pid], check=True, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
got = min(c_ - b for c_, b in zip(counts, base))
print(f"webhooks {n}, subscribers {nsubs}, every subscriber got {got}, "
      f"{time.time() - t0:.1f} s under callgrind", file=sys.stderr)
print("last answer:", data.decode(), file=sys.stderr)
for f in frames[0][:1]:
    print("a frame:", f.decode(), file=sys.stderr)
if got < n:
    sys.exit("subscribers missed frames")
