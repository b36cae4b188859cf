// SPDX-License-Identifier: GPL-3.0-or-later
//
// bench-common.js: what bench-relay.js and bench-cluster.js both need — clocks, percentiles,
// the CPU and memory of a process tree and of the whole machine from /proc, an HTTP request
// with a keep-alive agent, and stopping a child (SIGTERM, then SIGKILL).

'use strict';

const fs = require('fs');
const http = require('http');

const CLK_TCK = 100; // /proc/<pid>/stat ticks; 100 on every Debian kernel

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

// Every process under @pid (itself included): nginx's workers, pushpin's services, a
// --workers supervisor's workers.
function processTree(pid) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1], 10);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(parseInt(d, 10));
    } catch (e) { /* gone */ }
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    for (const c of children.get(p) || []) todo.push(c);
  }
  return out;
}

// CPU seconds (user + system) of a process tree, and its resident memory in bytes.
function treeUsage(pid) {
  let cpu = 0;
  let rss = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu += (parseInt(f[11], 10) + parseInt(f[12], 10)) / CLK_TCK; // utime, stime
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) rss += parseInt(m[1], 10) * 1024;
    } catch (e) { /* gone */ }
  }
  return { cpu, rss };
}

// CPU seconds the whole machine was busy (every core), from /proc/stat.
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK;
}

// An HTTP request with a keep-alive agent; resolves to { status, body, t } (t: answer time).
function request(agent, url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const h = Object.assign({}, headers);
    if (body) h['Content-Length'] = Buffer.byteLength(body); // pushpin refuses chunked bodies
    const req = http.request(url, { method, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode,
        body: Buffer.concat(chunks).toString(), t: nowMs() }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// SIGTERM, then SIGKILL after @graceMs.
function stopProcess(child, graceMs = 5000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.on('exit', () => { clearTimeout(t); resolve(); });
    child.kill('SIGTERM');
  });
}

module.exports = {
  CLK_TCK, sleep, nowMs, percentile, processTree, treeUsage, machineBusy, request, stopProcess,
};
