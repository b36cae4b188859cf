// SPDX-License-Identifier: GPL-3.0-or-later
//
// bench-relay.js: measures tocsin-relay against nginx+nchan and pushpin in the same run, on
// loopback, with configs written into a temp dir. Scenarios: ingest, latency, fan-out and
// connections (see docs/performance.md). Writes one JSON results file; bench-report.py turns
// the results of every benchmark into the table.
//
//   node bench-relay.js --relay=BUILD/src/relay/tocsin-relay --out=FILE
//        [--relay-base=OTHER/tocsin-relay]   (adds the peer "tocsin-base": before/after a change)
//        [--peers=tocsin,nchan,pushpin] [--scenarios=idle,ingest,latency,fanout]
//        [--subscribers=10000] [--idle-subscribers=10000,50000] [--ingest-seconds=8]
//        [--latency-seconds=5]
//
// Needs Debian's node-ws (NODE_PATH=/usr/share/nodejs), nginx-light, libnginx-mod-nchan,
// pushpin and wrk. The load generators' CPU use is part of the results: a generator that uses
// a whole core is the bottleneck and the figure says so.
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');
const { sleep, nowMs, percentile, treeUsage, machineBusy, request, stopProcess } =
  require('./bench-common.js');


// ---- arguments ------------------------------------------------------------------------------

const args = {};
for (const a of process.argv.slice(2)) {
  const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
  if (!m) throw new Error(`bad argument ${a}`);
  args[m[1]] = m[2] === undefined ? true : m[2];
}
const peersWanted = (args.peers || 'tocsin,nchan,pushpin').split(',')
  .concat(args['relay-base'] && !args.peers ? ['tocsin-base'] : []);
const scenarios = (args.scenarios || 'idle,ingest,latency,fanout').split(',');
const N_SUBS = parseInt(args.subscribers || '10000', 10);
// "Ingest with N idle subscribers on another channel": what a relay holding an organisation's
// subscribers all day gives a webhook. Counts past what the open files limit allows (the
// generator holds one descriptor per subscriber too) are left out, and the results say so.
const IDLE_WANTED = (args['idle-subscribers'] || '10000,50000').split(',').map((x) => parseInt(x, 10));
const IDLE_SECONDS = parseFloat(args['idle-seconds'] || '5');
const IDLE_WRK_CONNECTIONS = 32;
const MAX_SUBS = Math.max(N_SUBS, ...IDLE_WANTED);
const INGEST_SECONDS = parseFloat(args['ingest-seconds'] || '8');
const LATENCY_SECONDS = parseFloat(args['latency-seconds'] || '5');
const LATENCY_RATE = 1000;
const INGEST_SUBSCRIBERS = 10;
const FANOUT_ROUNDS = 5;
// Each scenario runs this many times per peer, alternating peers, and the best attempt counts
// (highest rate, lowest time), the same rule for every peer: on a shared machine the best of
// a few is the figure least disturbed by other jobs. Every attempt is kept in the results.
const REPEAT = parseInt(args.repeat || '2', 10);
const better = {
  // The attempt whose ratio (idle ÷ none) is the highest; every attempt is kept for the spread.
  idle: (a, b) => (a.ratio_10000 ?? -1) > (b.ratio_10000 ?? -1),
  ingest: (a, b) => (a.accepted_per_s || 0) > (b.accepted_per_s || 0),
  latency: (a, b) => (a.p99_ms ?? Infinity) < (b.p99_ms ?? Infinity),
  fanout: (a, b) => (a.last_ms_median ?? Infinity) < (b.last_ms_median ?? Infinity),
};

// ---- small helpers --------------------------------------------------------------------------

const log = (...a) => console.error('[bench-relay]', ...a);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function selfCpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// A lean HTTP/1.1 client for the latency generator: node's http module costs about a
// millisecond of CPU per request, which would make the generator the bottleneck at 1,000/s.
// Persistent connections, one request in flight on each; answers must carry Content-Length.
class RawHttp {
  constructor(url, headers, conns) {
    const u = new URL(url);
    this.host = u.hostname; this.port = +u.port; this.path = u.pathname + u.search;
    this.head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    this.idle = []; this.queue = []; this.all = new Set();
    // A server that closes after each answer (without "Connection: close") turns this off:
    // then every request gets a fresh connection, as any client of such a server would.
    this.reuse = true; this.reconnects = 0; this.closed = false;
    for (let i = 0; i < conns; i++) this.open();
  }
  open() {
    const sock = net.connect(this.port, this.host);
    sock.setNoDelay(true);
    const c = { sock, buf: Buffer.alloc(0), cb: null, body: null, answered: 0 };
    sock.on('data', (d) => {
      c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
      for (;;) {
        const end = c.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = c.buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const len = m ? +m[1] : 0;
        if (c.buf.length < end + 4 + len) return;
        const status = +head.slice(9, 12);
        c.buf = c.buf.subarray(end + 4 + len);
        c.answered++;
        const cb = c.cb; c.cb = null; c.body = null;
        if (/\r\nconnection:\s*close/i.test(head) || !this.reuse) this.retire(c); else this.release(c);
        if (cb) cb(null, status, nowMs());
      }
    });
    const gone = () => {
      if (!this.all.has(c) || this.closed) return;
      this.all.delete(c);
      this.idle = this.idle.filter((x) => x !== c);
      if (c.answered > 0 && c.cb === null) this.reuse = false;
      this.reconnects++;
      const retry = c.cb ? [c.body, c.cb] : null;
      c.cb = null;
      this.open();
      if (retry) this.post2(retry[0], retry[1]);
    };
    sock.on('close', gone);
    sock.on('error', () => {});
    this.all.add(c);
    this.idle.push(c);
  }
  retire(c) {
    this.all.delete(c);
    c.sock.destroy();
    if (!this.closed) this.open();
    const c2 = this.idle.pop();
    const next = this.queue.shift();
    if (next) this.send(c2, next[0], next[1]); else if (c2) this.idle.push(c2);
  }
  release(c) {
    const next = this.queue.shift();
    if (next) this.send(c, next[0], next[1]); else this.idle.push(c);
  }
  send(c, body, cb) {
    c.cb = cb; c.body = body;
    c.sock.write(`POST ${this.path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n${this.head}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  post2(body, cb) {
    const c = this.idle.pop();
    if (c) this.send(c, body, cb); else this.queue.push([body, cb]);
  }
  post(body) {
    return new Promise((resolve, reject) => {
      this.post2(body, (err, status, t) => (err ? reject(err) : resolve({ status, t })));
    });
  }
  destroy() { this.closed = true; for (const c of this.all) c.sock.destroy(); }
}

async function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on port ${port} after ${ms} ms`);
}

// ---- the peers ------------------------------------------------------------------------------
//
// Each peer gives: pid (root of its process tree), pub (url, headers, body(seq)), subUrl,
// parse(frame) → seq, stop(). The payload is the same small JSON everywhere.

const payload = (seq) => JSON.stringify({ seq, server_name: 'Production', cpu_usage: 95 });

async function startTocsin(dir, bin = path.resolve(args.relay), name = 'tocsin') {
  const child = spawn(bin, ['serve', '--listen=127.0.0.1:0', `--data-dir=${dir}/data`,
    // The bench floods one channel: lift the per-channel rate limit (not a cost we measure).
    '--rate=1000000', '--burst=1000000', `--max-connections=${MAX_SUBS + 1000}`,
    `--retention=${args['tocsin-retention'] || '24h'}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /Listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(buf);
      if (m) resolve(parseInt(m[1], 10));
    });
    child.on('exit', (c) => reject(new Error(`tocsin-relay exited (${c}) before listening`)));
  });
  const agent = new http.Agent({ keepAlive: true });
  const r = await request(agent, `http://127.0.0.1:${port}/v1/channels`, 'POST',
    { 'Content-Type': 'application/json' },
    JSON.stringify({ name: 'bench', title: 'Alerte serveur {{server_name}}',
      body: "L'utilisation du CPU a atteint {{cpu_usage}}%" }));
  if (r.status !== 201 && r.status !== 200) throw new Error(`channel create: ${r.status} ${r.body}`);
  const ch = JSON.parse(r.body);
  const r2 = await request(agent, `http://127.0.0.1:${port}/v1/channels`, 'POST',
    { 'Content-Type': 'application/json' }, JSON.stringify({ name: 'idle', title: 'idle' }));
  if (r2.status !== 201 && r2.status !== 200) throw new Error(`channel create: ${r2.status} ${r2.body}`);
  const idleCh = JSON.parse(r2.body);
  agent.destroy();
  return {
    name, pid: child.pid, port,
    pubUrl: `http://127.0.0.1:${port}/t/${ch.trigger_token}`,
    pubHeaders: { 'Content-Type': 'application/json' },
    pubBody: payload,
    subUrl: `ws://127.0.0.1:${port}/s/${ch.subscribe_token}/ws`,
    idleSubUrl: `ws://127.0.0.1:${port}/s/${idleCh.subscribe_token}/ws`,
    parse: (frame) => JSON.parse(frame).vars.seq,
    stop: () => stopProcess(child),
  };
}

async function startNchan(dir) {
  const port = await freePort();
  fs.mkdirSync(`${dir}/logs`, { recursive: true });
  const conf = `
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
user root;
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile ${MAX_SUBS + 2000};
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections ${MAX_SUBS + 1000}; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # Retention on, like tocsin-relay's: nchan keeps the messages in its shared memory.
  nchan_message_buffer_length 1000;
  nchan_message_timeout 24h;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location ~ ^/pub/(\\w+)$ { nchan_publisher; nchan_channel_id $1; }
    # Like tocsin-relay without ?since: a new subscriber gets live messages only.
    location ~ ^/sub/(\\w+)$ {
      nchan_subscriber websocket; nchan_channel_id $1; nchan_subscriber_first_message newest;
    }
  }
}
`;
  fs.writeFileSync(`${dir}/nginx.conf`, conf);
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', `${dir}/nginx.conf`, '-e', 'stderr'],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  try { await waitForPort(port, 10000); } catch (e) { await stopProcess(child); throw e; }
  return {
    name: 'nchan', pid: child.pid, port,
    pubUrl: `http://127.0.0.1:${port}/pub/bench`,
    pubHeaders: { 'Content-Type': 'application/json' },
    pubBody: payload,
    subUrl: `ws://127.0.0.1:${port}/sub/bench`,
    idleSubUrl: `ws://127.0.0.1:${port}/sub/idle`,
    parse: (frame) => JSON.parse(frame).seq,
    stop: () => stopProcess(child),
  };
}

// Pushpin's WebSocket subscribers need a GRIP backend that answers WebSocket-over-HTTP: on
// OPEN it subscribes the connection to the channel. It runs as its own process (this script
// with --grip-backend) so its CPU is not counted as the generator's.
function gripBackend(port) {
  // The channel is the path's last segment (/bench, /idle).
  const openFor = (channel) => {
    const ctl = 'c:' + JSON.stringify({ type: 'subscribe', channel });
    return `OPEN\r\nTEXT ${Buffer.byteLength(ctl).toString(16)}\r\n${ctl}\r\n`;
  };
  http.createServer((req, res) => {
    const open = openFor(req.url.split('?')[0].split('/').pop() || 'bench');
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const headers = { 'Content-Type': 'application/websocket-events' };
      if (body.startsWith('OPEN')) {
        headers['Sec-WebSocket-Extensions'] = 'grip';
        res.writeHead(200, headers);
        res.end(open);
      } else if (body.startsWith('CLOSE')) {
        res.writeHead(200, headers);
        res.end('CLOSE\r\n');
      } else {
        res.writeHead(200, headers);
        res.end();
      }
    });
  }).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}

async function startPushpin(dir) {
  const port = await freePort();
  const backendPort = await freePort();
  const pubPort = await freePort();
  const [pushIn, pushSub, command] = [await freePort(), await freePort(), await freePort()];
  fs.mkdirSync(`${dir}/run`, { recursive: true });
  fs.mkdirSync(`${dir}/log`, { recursive: true });
  fs.writeFileSync(`${dir}/routes`, `* 127.0.0.1:${backendPort},over_http\n`);
  // Debian's pushpin.conf, with our ports and dirs; zurl (which carries the proxy's requests to
  // the backend) runs under pushpin's runner instead of as a system service. message_rate and
  // message_hwm are raised from 2,500/s and 25,000: the defaults throttle publishing on purpose.
  let conf = fs.readFileSync('/etc/pushpin/pushpin.conf', 'utf8');
  const set = (key, value) => {
    const re = new RegExp(`^${key}=.*$`, 'm');
    if (!re.test(conf)) throw new Error(`pushpin.conf has no ${key}`);
    conf = conf.replace(re, `${key}=${value}`);
  };
  set('rundir', `${dir}/run`);
  set('logdir', `${dir}/log`);
  set('services', 'condure,zurl,pushpin-proxy,pushpin-handler');
  set('http_port', `127.0.0.1:${port}`);
  set('client_maxconn', String(MAX_SUBS + 1000));
  set('routesfile', `${dir}/routes`);
  set('push_in_spec', `tcp://127.0.0.1:${pushIn}`);
  set('push_in_sub_specs', `tcp://127.0.0.1:${pushSub}`);
  set('push_in_http_port', String(pubPort));
  set('command_spec', `tcp://127.0.0.1:${command}`);
  set('message_rate', '10000000');
  set('message_hwm', '10000000');
  conf = conf.replace(/^\[proxy\]$/m, `[proxy]
zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out`);
  fs.writeFileSync(`${dir}/pushpin.conf`, conf);

  const backend = spawn(process.execPath, [__filename, `--grip-backend=${backendPort}`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => backend.stdout.once('data', r));
  const child = spawn('/usr/bin/pushpin', ['--config', `${dir}/pushpin.conf`,
    '--logfile', `${dir}/log/pushpin.log`], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(port, 20000);
    await waitForPort(pubPort, 20000);
  } catch (e) { await stopProcess(child); await stopProcess(backend); throw e; }
  const wrapJson = (seq) => JSON.stringify({ items: [{ channel: 'bench',
    formats: { 'ws-message': { content: payload(seq) } } }] });
  return {
    name: 'pushpin', pid: child.pid, port, backendPid: backend.pid,
    pubUrl: `http://127.0.0.1:${pubPort}/publish/`,
    pubHeaders: { 'Content-Type': 'application/json' },
    pubBody: wrapJson,
    subUrl: `ws://127.0.0.1:${port}/bench`,
    idleSubUrl: `ws://127.0.0.1:${port}/idle`,
    parse: (frame) => JSON.parse(frame).seq,
    stop: async () => { await stopProcess(child); await stopProcess(backend); },
  };
}

const starters = { tocsin: startTocsin, nchan: startNchan, pushpin: startPushpin,
  'tocsin-base': (dir) => startTocsin(dir, path.resolve(args['relay-base']), 'tocsin-base') };

// ---- subscribers ----------------------------------------------------------------------------

// Opens @n WebSocket subscribers, @parallel handshakes at a time. Source addresses rotate over
// 127.0.0.2..: each peer's 10,000 connections then never run short of ephemeral ports.
async function openSubscribers(peer, n, onMessage, parallel = 200, url = peer.subUrl) {
  const sockets = [];
  const errors = {};
  let next = 0;
  let failed = 0;
  const one = () => new Promise((resolve) => {
    const i = next++;
    const ws = new WebSocket(url, { perMessageDeflate: false,
      localAddress: `127.0.0.${2 + (i % 200)}`, handshakeTimeout: 30000 });
    ws.on('open', () => { sockets.push(ws); resolve(); });
    ws.on('message', (data) => onMessage(data, i));
    ws.on('error', (e) => {
      failed++;
      const k = String(e.message).slice(0, 60);
      errors[k] = (errors[k] || 0) + 1;
      resolve();
    });
  });
  const workers = [];
  for (let w = 0; w < Math.min(parallel, n); w++) {
    workers.push((async () => { while (next < n) await one(); })());
  }
  await Promise.all(workers);
  if (failed) log(peer.name, `${failed} subscribers failed:`, JSON.stringify(errors));
  return { sockets, failed, errors };
}

async function closeSubscribers(sockets) {
  for (const ws of sockets) ws.terminate();
  await sleep(300);
}

// ---- scenarios ------------------------------------------------------------------------------

// wrk with a Lua script that POSTs the payload; runs under bash so `times` gives wrk's CPU.
function runWrk(peer, dir, seconds, connections = 16) {
  const lua = `${dir}/post.lua`;
  fs.writeFileSync(lua, `wrk.method = "POST"
wrk.body = ${JSON.stringify(peer.pubBody(1))}
wrk.headers["Content-Type"] = "application/json"
response = function (status, headers, body)
  if status >= 300 then io.stderr:write("wrk: status " .. status .. "\\n") end
end
`);
  return new Promise((resolve) => {
    const child = spawn('/bin/bash', ['-c', 'wrk "$@"; times', 'wrk', '-t1', `-c${connections}`,
      `-d${seconds}s`, '--latency', '-s', lua, peer.pubUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', () => {
      const reqs = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const total = /(\d+) requests in/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      // `times`: shell user/sys, then children user/sys ("0m1.234s 0m0.567s")
      const t = out.trim().split('\n').pop().match(/(\d+)m([\d.]+)s/g) || [];
      const secs = t.map((x) => { const m = /(\d+)m([\d.]+)s/.exec(x); return +m[1] * 60 + +m[2]; });
      const statusErrors = (err.match(/wrk: status/g) || []).length;
      // The thread stats' mean latency: "Latency   4.80ms ..." (us, ms or s).
      const lat = /Latency\s+([\d.]+)(us|ms|s)\b/.exec(out);
      const meanMs = lat ? parseFloat(lat[1]) * { us: 1e-3, ms: 1, s: 1e3 }[lat[2]] : null;
      resolve({ rps: reqs ? parseFloat(reqs[1]) : 0, requests: total ? +total[1] : 0, meanMs,
        non2xx: non2xx ? +non2xx[1] : 0, statusErrors, cpu: secs.length >= 2 ? secs[0] + secs[1] : null,
        raw: out });
    });
  });
}

async function scenarioIngest(peer, dir) {
  const counts = new Array(INGEST_SUBSCRIBERS).fill(0);
  const { sockets, failed } = await openSubscribers(peer, INGEST_SUBSCRIBERS,
    (data, i) => { counts[i]++; });
  await sleep(200);
  const before = treeUsage(peer.pid);
  const selfBefore = selfCpu();
  const t0 = nowMs();
  const w = await runWrk(peer, dir, INGEST_SECONDS);
  // Let the subscribers drain what was accepted before counting.
  let last = -1;
  for (let i = 0; i < 50 && Math.min(...counts) !== last; i++) { last = Math.min(...counts); await sleep(200); }
  const elapsed = (nowMs() - t0) / 1000;
  const after = treeUsage(peer.pid);
  const accepted = w.requests - w.non2xx;
  await closeSubscribers(sockets);
  return {
    accepted_per_s: accepted / INGEST_SECONDS,
    wrk_requests_per_s: w.rps, non2xx: w.non2xx, subscribers: INGEST_SUBSCRIBERS,
    subscribers_failed: failed,
    delivered_min: Math.min(...counts), delivered_max: Math.max(...counts), accepted,
    server_cpu_s: after.cpu - before.cpu, wall_s: elapsed,
    server_cpu_pct: 100 * (after.cpu - before.cpu) / elapsed,
    generator_cpu_pct: { wrk: w.cpu === null ? null : 100 * w.cpu / INGEST_SECONDS,
      node_subscribers: 100 * (selfCpu() - selfBefore) / elapsed },
  };
}

// Ingest (wrk -t1 -c32, the same POST body, no subscriber on its channel) with no idle
// subscribers, then with each count in IDLE_WANTED held on another channel, in the same run.
async function scenarioIdle(peer, dir) {
  let limit = Infinity;
  try {
    const m = /Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m) limit = parseInt(m[1], 10);
  } catch (e) { /* no limit known */ }
  const counts = [0, ...IDLE_WANTED.filter((n) => n + 500 <= limit)];
  const skipped = IDLE_WANTED.filter((n) => n + 500 > limit);
  if (skipped.length) log(peer.name, `idle: ${skipped.join(', ')} left out: open files limit ${limit}`);
  const rows = [];
  for (const n of counts) {
    const idle = treeUsage(peer.pid);
    const { sockets, failed } = n > 0
      ? await openSubscribers(peer, n, () => {}, 200, peer.idleSubUrl)
      : { sockets: [], failed: 0 };
    await sleep(1500); // let the server settle (pushpin subscribes through its backend)
    const held = treeUsage(peer.pid);
    const stillOpen = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
    const before = treeUsage(peer.pid);
    const w = await runWrk(peer, dir, IDLE_SECONDS, IDLE_WRK_CONNECTIONS);
    const after = treeUsage(peer.pid);
    const accepted = w.requests - w.non2xx;
    rows.push({ idle_subscribers: n, connected: sockets.length, failed, still_open: stillOpen,
      accepted_per_s: accepted / IDLE_SECONDS, mean_latency_ms: w.meanMs, non2xx: w.non2xx,
      server_cpu_pct: 100 * (after.cpu - before.cpu) / IDLE_SECONDS,
      wrk_cpu_pct: w.cpu === null ? null : 100 * w.cpu / IDLE_SECONDS,
      rss_held_bytes: held.rss,
      rss_per_connection_bytes: sockets.length ? (held.rss - idle.rss) / sockets.length : null });
    await closeSubscribers(sockets);
    if (n > 0) await sleep(1000);
  }
  const r = { rows, skipped, connections: IDLE_WRK_CONNECTIONS, seconds: IDLE_SECONDS,
    server_cpu_pct: Math.max(...rows.map((x) => x.server_cpu_pct)),
    generator_cpu_pct: { wrk: Math.max(...rows.map((x) => x.wrk_cpu_pct || 0)) } };
  for (const x of rows.slice(1)) {
    r[`ratio_${x.idle_subscribers}`] = rows[0].accepted_per_s ? x.accepted_per_s / rows[0].accepted_per_s : null;
  }
  return r;
}

async function scenarioLatency(peer) {
  const sent = new Map();
  const lat = [];
  const ackLat = [];
  const { sockets } = await openSubscribers(peer, 1, (data) => {
    const t = nowMs();
    const seq = peer.parse(data.toString());
    const s = sent.get(seq);
    if (s !== undefined) { lat.push(t - s.t); s.frame = t; }
  });
  await sleep(200);
  const client = new RawHttp(peer.pubUrl, peer.pubHeaders, 16);
  const total = Math.round(LATENCY_RATE * LATENCY_SECONDS);
  const interval = 1000 / LATENCY_RATE;
  const before = treeUsage(peer.pid);
  const selfBefore = selfCpu();
  const start = nowMs();
  let seq = 1;
  let errors = 0;
  const pending = [];
  // Open loop: each request goes at its scheduled time whatever the answers do.
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((nowMs() - start) / interval) + 1);
      while (seq <= due) {
        const s = seq++;
        const rec = { t: nowMs() };
        sent.set(s, rec);
        pending.push(client.post(peer.pubBody(s))
          .then((r) => { if (r.status >= 300) errors++; rec.ack = r.t; })
          .catch(() => { errors++; }));
      }
      // A timer, not setImmediate: spinning would take the core the server needs.
      if (seq > total) resolve(); else setTimeout(tick, 0);
    };
    tick();
  });
  await Promise.all(pending);
  const deadline = nowMs() + 5000;
  while (lat.length < total - errors && nowMs() < deadline) await sleep(20);
  const elapsed = (nowMs() - start) / 1000;
  const after = treeUsage(peer.pid);
  for (const s of sent.values()) if (s.frame !== undefined && s.ack !== undefined) ackLat.push(Math.max(0, s.frame - s.ack));
  client.destroy();
  await closeSubscribers(sockets);
  lat.sort((a, b) => a - b);
  ackLat.sort((a, b) => a - b);
  return {
    rate: LATENCY_RATE, sent: total, received: lat.length, errors,
    keepalive: client.reuse, reconnects: client.reconnects,
    p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), max_ms: lat[lat.length - 1],
    accepted_to_frame_p50_ms: percentile(ackLat, 50), accepted_to_frame_p99_ms: percentile(ackLat, 99),
    server_cpu_pct: 100 * (after.cpu - before.cpu) / elapsed,
    generator_cpu_pct: { node: 100 * (selfCpu() - selfBefore) / elapsed },
  };
}

async function scenarioFanout(peer) {
  let round = 0;
  let got = 0;
  let lastAt = 0;
  let firstAt = 0;
  const idle = treeUsage(peer.pid);
  const openStart = nowMs();
  const { sockets, failed } = await openSubscribers(peer, N_SUBS, () => {
    got++;
    const t = nowMs();
    if (got === 1) firstAt = t;
    lastAt = t;
  });
  const openSeconds = (nowMs() - openStart) / 1000;
  await sleep(1500); // let the server settle (pushpin subscribes through its backend)
  got = 0;
  const held = treeUsage(peer.pid);
  // Are they all still open after a while idle?
  const stillOpen = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  const agent = new http.Agent({ keepAlive: true });
  const times = [];
  const firsts = [];
  const receivedPerRound = [];
  const genBusy = []; // the generator's CPU while a round was being delivered, in % of that time
  const before = treeUsage(peer.pid);
  const selfBefore = selfCpu();
  const wallStart = nowMs();
  for (round = 1; round <= FANOUT_ROUNDS; round++) {
    got = 0; lastAt = 0; firstAt = 0;
    const c0 = selfCpu();
    const t0 = nowMs();
    const r = await request(agent, peer.pubUrl, 'POST', peer.pubHeaders, peer.pubBody(round));
    if (r.status >= 300) log(peer.name, 'publish failed', r.status, r.body);
    const deadline = t0 + 10000;
    while (got < stillOpen && nowMs() < deadline) await sleep(1);
    if (got > 0) genBusy.push(100 * (selfCpu() - c0) / Math.max(1e-3, (nowMs() - t0) / 1000));
    if (got < stillOpen) { receivedPerRound.push(got); log(peer.name, `round ${round}: ${got} of ${stillOpen} received in 10 s; stopping`); break; }
    await sleep(300); // count stragglers (and see none arrive twice)
    receivedPerRound.push(got);
    if (got > 0) { times.push(lastAt - t0); firsts.push(firstAt - t0); }
    await sleep(200);
  }
  const wall = (nowMs() - wallStart) / 1000;
  const after = treeUsage(peer.pid);
  agent.destroy();
  await closeSubscribers(sockets);
  times.sort((a, b) => a - b);
  firsts.sort((a, b) => a - b);
  return {
    subscribers: N_SUBS, connected: sockets.length, failed, still_open: stillOpen,
    open_seconds: openSeconds,
    rss_idle_bytes: idle.rss, rss_held_bytes: held.rss,
    rss_per_connection_bytes: sockets.length ? (held.rss - idle.rss) / sockets.length : null,
    rounds: FANOUT_ROUNDS, received_per_round: receivedPerRound,
    last_ms_median: percentile(times, 50), last_ms_min: times[0], last_ms_max: times[times.length - 1],
    first_ms_median: percentile(firsts, 50),
    server_cpu_pct: 100 * (after.cpu - before.cpu) / wall,
    generator_cpu_pct: { node: 100 * (selfCpu() - selfBefore) / wall,
      node_during_delivery_median: percentile(genBusy.sort((a, b) => a - b), 50) },
  };
}

// Waits until every running peer is idle (a peer that still works through a backlog, as
// pushpin does after the ingest flood, would steal the CPU of the next measurement).
async function waitIdle(running, maxMs = 20000) {
  const start = nowMs();
  for (;;) {
    const before = running.map(({ peer }) => treeUsage(peer.pid).cpu);
    await sleep(500);
    const busy = running.filter(({ peer }, i) => treeUsage(peer.pid).cpu - before[i] > 0.025);
    if (busy.length === 0) return nowMs() - start;
    if (nowMs() - start > maxMs) {
      log(`still busy after ${maxMs} ms: ${busy.map((r) => r.name).join(', ')}; going on`);
      return nowMs() - start;
    }
  }
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  if (args['grip-backend']) return gripBackend(parseInt(args['grip-backend'], 10));
  if (!args.relay || !args.out) throw new Error('usage: --relay=PATH --out=FILE');
  const results = { machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0].model,
    memory_bytes: os.totalmem(), kernel: os.release(), loadavg_at_start: os.loadavg() }, started: new Date().toISOString(),
  peers: {}, versions: {} };
  const ver = (cmd, a) => { const r = spawnSync(cmd, a, { encoding: 'utf8' }); return (r.stdout + r.stderr).split('\n')[0].trim(); };
  results.versions = { nginx: ver('/usr/sbin/nginx', ['-v']), pushpin: ver('/usr/bin/pushpin', ['--version']),
    wrk: ver('wrk', ['--version']), node: process.version };
  // Every peer runs for the whole run (an idle one costs nothing), and each scenario goes
  // through the peers one after the other: the ratios then compare figures taken minutes, not
  // many minutes, apart, which matters on a shared machine whose load drifts.
  const running = [];
  for (const name of peersWanted) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${name}-`));
    results.peers[name] = {};
    try {
      log(`starting ${name} in ${dir}`);
      running.push({ name, dir, peer: await starters[name](dir) });
    } catch (e) {
      results.peers[name].error = String(e && e.stack || e);
      log(`${name}: ${results.peers[name].error}`);
      if (!args['keep-dirs']) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  try {
    for (const sc of scenarios) {
      for (let attempt = 1; attempt <= REPEAT; attempt++) {
        for (const { name, dir, peer } of running) {
          const res = results.peers[name];
          const idleWait = await waitIdle(running);
          log(`${name}: ${sc} #${attempt} (waited ${(idleWait / 1000).toFixed(1)} s for the peers to be idle)`);
          const t = Date.now();
          const busy0 = machineBusy();
          let r;
          try {
            if (sc === 'ingest') r = await scenarioIngest(peer, dir);
            else if (sc === 'idle') r = await scenarioIdle(peer, dir);
            else if (sc === 'latency') r = await scenarioLatency(peer);
            else if (sc === 'fanout') r = await scenarioFanout(peer);
            else throw new Error(`unknown scenario ${sc}`);
            // What the whole machine used meanwhile (other jobs on a shared box skew a run).
            r.machine_busy_pct = 100 * (machineBusy() - busy0) / ((Date.now() - t) / 1000);
            r.waited_for_idle_ms = idleWait;
            r.attempt = attempt;
          } catch (e) {
            r = { error: String(e && e.stack || e), attempt };
          }
          log(`${name}: ${sc} #${attempt} done in ${((Date.now() - t) / 1000).toFixed(1)} s`,
            JSON.stringify(r));
          const attempts = (res[`${sc}_attempts`] = res[`${sc}_attempts`] || []);
          attempts.push(r);
          if (!r.error && (!res[sc] || res[sc].error || better[sc](r, res[sc]))) res[sc] = r;
          else if (!res[sc]) res[sc] = r;
        }
      }
    }
  } finally {
    for (const { dir, peer } of running) {
      await peer.stop();
      if (!args['keep-dirs']) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  results.finished = new Date().toISOString();
  fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(results, null, 2));
}

main().catch((e) => { console.error(e); process.exit(1); });
