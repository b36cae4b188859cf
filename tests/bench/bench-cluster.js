// SPDX-License-Identifier: GPL-3.0-or-later
//
// bench-cluster.js (issue 16, item 6): the relay serving from PostgreSQL with 1, 2 and 3 nodes
// and with one node of --workers=2, against the single relay on its SQLite, in the same run, as
// ratios. Each configuration runs alone, one after the other (the machine has 2 cores):
//
//  - ingest: wrk POSTs the same small webhook to one channel with SENDERS connections in all,
//    spread over the nodes (3 nodes: 3 + 3 + 2), no subscriber; accepted webhooks per second.
//  - fan-out: SUBSCRIBERS WebSocket subscribers of that channel, spread round-robin over the
//    nodes (--workers=2: one port, the kernel spreads them); ROUNDS webhooks, each POSTed to the
//    next node in turn; the time from the POST to the first and to the last subscriber's frame.
//
// PostgreSQL is the tests' own (tests/tocsin-test-postgres.c, through bench-postgres): one
// server for the run, and a channel of its own for each configuration.
//
//   node bench-cluster.js --relay=BUILD/src/relay/tocsin-relay --postgres=BUILD/tests/bench/bench-postgres
//        --out=FILE [--configs=sqlite,pg1,pg2,pg3,pg1w2] [--subscribers=10000]
//        [--ingest-seconds=8] [--senders=8] [--rounds=5] [--repeat=1]
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');
const { sleep, nowMs, percentile, treeUsage, machineBusy, request, stopProcess } =
  require('./bench-common.js');

const treeCpu = (pid) => treeUsage(pid).cpu;
const JSON_HEADERS = { 'Content-Type': 'application/json' };


const args = {};
for (const a of process.argv.slice(2)) {
  const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
  if (!m) throw new Error(`bad argument ${a}`);
  args[m[1]] = m[2] === undefined ? true : m[2];
}
const CONFIGS = {
  sqlite: { label: 'SQLite, 1 relay (baseline)', nodes: 1, pg: false, workers: 1 },
  pg1: { label: 'PostgreSQL, 1 node', nodes: 1, pg: true, workers: 1 },
  pg2: { label: 'PostgreSQL, 2 nodes', nodes: 2, pg: true, workers: 1 },
  pg3: { label: 'PostgreSQL, 3 nodes', nodes: 3, pg: true, workers: 1 },
  pg1w2: { label: 'PostgreSQL, 1 node --workers=2', nodes: 1, pg: true, workers: 2 },
};
const wanted = (args.configs || 'sqlite,pg1,pg2,pg3,pg1w2').split(',');
const N_SUBS = parseInt(args.subscribers || '10000', 10);
const INGEST_SECONDS = parseFloat(args['ingest-seconds'] || '8');
const SENDERS = parseInt(args.senders || '8', 10);
const ROUNDS = parseInt(args.rounds || '5', 10);
const REPEAT = parseInt(args.repeat || '1', 10);

const log = (...a) => console.error('[bench-cluster]', ...a);

// ---- PostgreSQL and the relays --------------------------------------------------------------

function startPostgres() {
  const child = spawn(path.resolve(args.postgres), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /^(postgres(?:ql)?:\/\/\S+)\n(\S+)\n/m.exec(buf);
      if (!m) return;
      const pid = parseInt(fs.readFileSync(`${m[2]}/data/postmaster.pid`, 'utf8'), 10);
      resolve({ conninfo: m[1], cpu: () => treeCpu(pid),
        stop: () => { child.stdin.end(); return stopProcess(child, 10000); } });
    });
    child.on('exit', (c) => reject(new Error(`bench-postgres exited (${c}) before PostgreSQL ran`)));
  });
}

async function startNode(dir, name, extra) {
  fs.mkdirSync(`${dir}/${name}`, { recursive: true });
  const child = spawn(path.resolve(args.relay), ['serve', '--listen=127.0.0.1:0',
    `--data-dir=${dir}/${name}`,
    // One channel takes every webhook: its rate limit is not what is measured.
    '--rate=1000000', '--burst=1000000', `--max-connections=${N_SUBS + 1000}`, ...extra],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /Listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(buf);
      if (m) resolve(parseInt(m[1], 10));
    });
    child.on('exit', (c) => reject(new Error(`tocsin-relay ${name} exited (${c}) before listening`)));
  });
  child.stdout.resume();
  return { name, child, port, pid: child.pid };
}

async function startConfig(key, dir, postgres) {
  const conninfo = postgres && postgres.conninfo;
  const c = CONFIGS[key];
  const nodes = [];
  for (let i = 0; i < c.nodes; i++) {
    const extra = c.pg ? [`--database=${conninfo}`, `--node-name=${key}-${i + 1}`] : [];
    if (c.workers > 1) extra.push(`--workers=${c.workers}`);
    nodes.push(await startNode(dir, `node${i + 1}`, extra));
  }
  const agent = new http.Agent({ keepAlive: true });
  const r = await request(agent, `http://127.0.0.1:${nodes[0].port}/v1/channels`, 'POST',
    JSON_HEADERS, JSON.stringify({ name: `bench ${key}`, title: 'Alerte serveur {{server_name}}',
      body: "L'utilisation du CPU a atteint {{cpu_usage}}%" }));
  agent.destroy();
  if (r.status !== 201 && r.status !== 200) throw new Error(`channel create: ${r.status} ${r.body}`);
  const ch = JSON.parse(r.body);
  return {
    nodes,
    pubUrls: nodes.map((n) => `http://127.0.0.1:${n.port}/t/${ch.trigger_token}`),
    subUrls: nodes.map((n) => `ws://127.0.0.1:${n.port}/s/${ch.subscribe_token}/ws`),
    cpu: () => nodes.reduce((s, n) => s + treeCpu(n.pid), 0),
    // PostgreSQL's server and backends (for the SQLite relay, nothing).
    dbCpu: () => (c.pg ? postgres.cpu() : 0),
    stop: () => Promise.all(nodes.map((n) => stopProcess(n.child, 10000))),
  };
}

// ---- ingest ---------------------------------------------------------------------------------

const payload = (seq) => JSON.stringify({ seq, server_name: 'Production', cpu_usage: 95 });

function runWrk(dir, url, connections, seconds) {
  const lua = `${dir}/post.lua`;
  fs.writeFileSync(lua, `wrk.method = "POST"
wrk.body = ${JSON.stringify(payload(1))}
wrk.headers["Content-Type"] = "application/json"
`);
  return new Promise((resolve) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', lua, url],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', () => {
      const total = /(\d+) requests in/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      resolve({ requests: total ? +total[1] : 0, non2xx: non2xx ? +non2xx[1] : 0 });
    });
  });
}

async function ingest(cluster, dir) {
  const n = cluster.nodes.length;
  // SENDERS connections in all, spread over the nodes (wrk needs one each at least).
  const share = cluster.pubUrls.map((_, i) => Math.max(1, Math.floor(SENDERS / n) + (i < SENDERS % n ? 1 : 0)));
  const cpu0 = cluster.cpu();
  const db0 = cluster.dbCpu();
  const busy0 = machineBusy();
  const t0 = nowMs();
  const runs = await Promise.all(cluster.pubUrls.map((url, i) => runWrk(dir, url, share[i], INGEST_SECONDS)));
  const wall = (nowMs() - t0) / 1000;
  const accepted = runs.reduce((s, r) => s + r.requests - r.non2xx, 0);
  return {
    accepted_per_s: accepted / INGEST_SECONDS, accepted,
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    per_node_per_s: runs.map((r) => (r.requests - r.non2xx) / INGEST_SECONDS), senders: share,
    relays_cpu_pct: 100 * (cluster.cpu() - cpu0) / wall,
    postgres_cpu_pct: 100 * (cluster.dbCpu() - db0) / wall,
    // CPU per webhook holds better than a rate on a machine other jobs share.
    relays_cpu_ms_per_webhook: accepted ? 1000 * (cluster.cpu() - cpu0) / accepted : null,
    postgres_cpu_ms_per_webhook: accepted ? 1000 * (cluster.dbCpu() - db0) / accepted : null,
    machine_busy_pct: 100 * (machineBusy() - busy0) / wall,
  };
}

// ---- fan-out --------------------------------------------------------------------------------

// Opens @n subscribers, subscriber i on urls[i % urls.length], 200 handshakes at a time; source
// addresses rotate over 127.0.0.2.. so that 10,000 connections never run short of ports.
async function openSubscribers(urls, n, onMessage) {
  const sockets = [];
  const errors = {};
  let next = 0;
  let failed = 0;
  const one = () => new Promise((resolve) => {
    const i = next++;
    const ws = new WebSocket(urls[i % urls.length], { perMessageDeflate: false,
      localAddress: `127.0.0.${2 + (i % 200)}`, handshakeTimeout: 30000 });
    ws.on('open', () => { sockets.push(ws); resolve(); });
    ws.on('message', () => onMessage());
    ws.on('error', (e) => {
      failed++;
      const k = String(e.message).slice(0, 60);
      errors[k] = (errors[k] || 0) + 1;
      resolve();
    });
  });
  const workers = [];
  for (let w = 0; w < Math.min(200, n); w++) workers.push((async () => { while (next < n) await one(); })());
  await Promise.all(workers);
  if (failed) log(`${failed} subscribers failed:`, JSON.stringify(errors));
  return { sockets, failed, errors };
}

// Waits until the relays and PostgreSQL are idle (at most 3 minutes); returns the seconds taken.
async function settle(cluster) {
  const start = nowMs();
  await sleep(2000);
  for (;;) {
    const c0 = cluster.cpu() + cluster.dbCpu();
    await sleep(1000);
    if (cluster.cpu() + cluster.dbCpu() - c0 < 0.05 || nowMs() - start > 180000) break;
  }
  return (nowMs() - start) / 1000;
}

async function fanout(cluster) {
  let got = 0;
  let firstAt = 0;
  let lastAt = 0;
  const openStart = nowMs();
  const { sockets, failed, errors } = await openSubscribers(cluster.subUrls, N_SUBS, () => {
    got++;
    const t = nowMs();
    if (got === 1) firstAt = t;
    lastAt = t;
  });
  const openSeconds = (nowMs() - openStart) / 1000;
  // On PostgreSQL each new subscriber is a presence row, written by the node's writer thread in
  // the queue a webhook's commit waits in: let the relays and the database go idle first, and
  // say how long that took (the rounds measure the fan-out, not that backlog).
  const settleSeconds = await settle(cluster);
  const open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  const agent = new http.Agent({ keepAlive: true });
  const firsts = [];
  const lasts = [];
  const received = [];
  const cpu0 = cluster.cpu();
  const busy0 = machineBusy();
  const w0 = nowMs();
  for (let round = 1; round <= ROUNDS; round++) {
    got = 0; firstAt = 0; lastAt = 0;
    const url = cluster.pubUrls[(round - 1) % cluster.pubUrls.length];
    const t0 = nowMs();
    const r = await request(agent, url, 'POST', JSON_HEADERS, payload(round));
    if (r.status >= 300) log('publish failed', r.status, r.body);
    const deadline = t0 + 30000;
    while (got < open && nowMs() < deadline) await sleep(1);
    if (got < open) { received.push(got); log(`round ${round}: ${got} of ${open} in 30 s; stopping`); break; }
    await sleep(300); // stragglers (a frame twice would show here)
    received.push(got);
    firsts.push(firstAt - t0);
    lasts.push(lastAt - t0);
    await sleep(200);
  }
  const wall = (nowMs() - w0) / 1000;
  const cpu = cluster.cpu() - cpu0;
  agent.destroy();
  for (const ws of sockets) ws.terminate();
  // The nodes delete the presence rows of 10,000 subscribers: let them, before they are stopped.
  const closeSeconds = await settle(cluster);
  firsts.sort((a, b) => a - b);
  lasts.sort((a, b) => a - b);
  return {
    subscribers: N_SUBS, connected: sockets.length, failed, errors, open_after_settling: open,
    open_seconds: openSeconds, settle_seconds: settleSeconds, close_settle_seconds: closeSeconds, rounds: ROUNDS, received_per_round: received,
    first_ms_median: percentile(firsts, 50), last_ms_median: percentile(lasts, 50),
    last_ms_min: lasts[0], last_ms_max: lasts[lasts.length - 1],
    relays_cpu_pct: 100 * cpu / wall, machine_busy_pct: 100 * (machineBusy() - busy0) / wall,
  };
}

// ---- main -----------------------------------------------------------------------------------

function table(results) {
  const base = results.configs.sqlite || {};
  const r = (a, b) => (a == null || b == null || b === 0 ? '—' : (a / b).toFixed(2));
  const f = (v, d = 0) => (v == null ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: d }));
  const lines = ['| configuration | ingest webhooks/s | ÷ SQLite | relays + PostgreSQL CPU ms/webhook'
    + ' | subscribers held | settled after s | first frame ms | last frame ms | last ÷ SQLite |',
  '|---|---|---|---|---|---|---|---|---|'];
  for (const key of wanted) {
    const c = results.configs[key];
    if (!c) continue;
    if (c.error) { lines.push(`| ${CONFIGS[key].label} | error: ${c.error.split('\n')[0].slice(0, 80)} | | | | | | | |`); continue; }
    const i = c.ingest || {};
    const o = c.fanout || {};
    lines.push(`| ${CONFIGS[key].label} | ${f(i.accepted_per_s)} | ${r(i.accepted_per_s, base.ingest && base.ingest.accepted_per_s)}`
      + ` | ${f(i.relays_cpu_ms_per_webhook, 2)} + ${f(i.postgres_cpu_ms_per_webhook, 2)}`
      + ` | ${f(o.open_after_settling)} of ${f(o.subscribers)} | ${f(o.settle_seconds)}`
      + ` | ${f(o.first_ms_median, 1)} | ${f(o.last_ms_median, 1)}`
      + ` | ${r(o.last_ms_median, base.fanout && base.fanout.last_ms_median)} |`);
  }
  return lines.join('\n');
}

async function main() {
  if (!args.relay || !args.postgres || !args.out) throw new Error('usage: --relay=PATH --postgres=PATH --out=FILE');
  for (const k of wanted) if (!CONFIGS[k]) throw new Error(`unknown configuration ${k}`);
  let limit = null;
  try { limit = +/Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))[1]; } catch (e) { /* none */ }
  if (limit !== null && limit < N_SUBS + 500) log(`the open files limit is ${limit}: fewer than ${N_SUBS} subscribers will connect`);
  const results = { machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0].model,
    memory_bytes: os.totalmem(), kernel: os.release(), loadavg_at_start: os.loadavg(),
    open_files_limit: limit },
  started: new Date().toISOString(), senders: SENDERS, ingest_seconds: INGEST_SECONDS, configs: {} };
  const postgres = wanted.some((k) => CONFIGS[k].pg) ? await startPostgres() : null;
  try {
    for (let attempt = 1; attempt <= REPEAT; attempt++) {
      for (const key of wanted) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-cluster-${key}-`));
        let cluster = null;
        const res = { attempt };
        try {
          log(`${key}: starting (${CONFIGS[key].label})`);
          cluster = await startConfig(key, dir, postgres);
          await sleep(1000);
          res.ingest = await ingest(cluster, dir);
          log(`${key}: ingest`, JSON.stringify(res.ingest));
          await sleep(2000); // the last group commits
          res.fanout = await fanout(cluster);
          log(`${key}: fan-out`, JSON.stringify(res.fanout));
        } catch (e) {
          res.error = String(e && e.stack || e);
          log(`${key}: ${res.error}`);
        } finally {
          if (cluster) await cluster.stop();
          fs.rmSync(dir, { recursive: true, force: true });
        }
        const prev = results.configs[key];
        (results.attempts = results.attempts || []).push(Object.assign({ config: key }, res));
        // Best attempt: the highest ingest rate (every attempt is kept in "attempts").
        if (!prev || prev.error || (!res.error && res.ingest.accepted_per_s > prev.ingest.accepted_per_s)) results.configs[key] = res;
      }
    }
  } finally {
    if (postgres) await postgres.stop();
  }
  results.finished = new Date().toISOString();
  results.table = table(results);
  fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(results, null, 2));
  console.log(results.table);
}

main().catch((e) => { console.error(e); process.exit(1); });
