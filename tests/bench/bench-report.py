#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turns the benchmarks' JSON results (<build>/tests/bench/results/*.json) into the table of
docs/performance.md: each scenario, Tocsin's figure, each peer's, the ratio, the target, and
whether it is met. Then the load generators' CPU use, which says whether a figure measured the
server or the generator.

    bench-report.py RESULTS_DIR
"""
import json
import os
import sys


def load(directory, name):
    try:
        with open(os.path.join(directory, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def fmt(v, unit="", digits=1):
    if v is None:
        return "—"
    if isinstance(v, (int, float)) and abs(v) >= 1000 and digits <= 1:
        return f"{v:,.0f}{unit}"
    return f"{v:.{digits}f}{unit}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}"


def verdict(ok):
    if ok is None:
        return "?"
    return "yes" if ok else "**no**"


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    relay = load(directory, "relay.json") or {}
    history = load(directory, "app-history.json")
    burst = load(directory, "app-burst.json")
    e2e = load(directory, "app-e2e.json")
    peers = relay.get("peers", {})
    t, n, p = peers.get("tocsin", {}), peers.get("nchan", {}), peers.get("pushpin", {})

    rows = []

    def add(scenario, measure, target, tv, nv, pv, ok, unit="", digits=1, ratios=True):
        # The ratio is always Tocsin ÷ peer; the target column says which way is better.
        rows.append((scenario, measure, target, fmt(tv, unit, digits), fmt(nv, unit, digits),
                     ratio(tv, nv) if ratios else "", fmt(pv, unit, digits),
                     ratio(tv, pv) if ratios else "", verdict(ok) if target else ""))

    ti, ni, pi = (get(x, "ingest", "accepted_per_s") for x in (t, n, p))
    add("ingest", "webhooks accepted/s, 10 WS subscribers", "≥ nchan", ti, ni, pi,
        None if ti is None or ni is None else ti >= ni, "/s")
    # Per CPU-second of the server: the figure least moved by other jobs on a shared machine.
    def per_cpu(x):
        r = x.get("ingest") or {}
        cpu = r.get("server_cpu_pct")
        return None if not cpu or r.get("accepted_per_s") is None else r["accepted_per_s"] / (cpu / 100)
    tc, nc, pc = (per_cpu(x) for x in (t, n, p))
    add("ingest", "webhooks per CPU-second of the server", "", tc, nc, pc, None, "")
    td, nd, pd = (get(x, "ingest", "delivered_min") for x in (t, n, p))
    ta, na, pa = (get(x, "ingest", "accepted") for x in (t, n, p))
    add("ingest", "each subscriber received / accepted", "all",
        None if not ta else 100 * td / ta, None if not na else 100 * nd / na,
        None if not pa else 100 * pd / pa,
        None if not ta else td >= ta, "%", ratios=False)

    # Ingest with a population idle on another channel (issue 17): the same wrk run with none,
    # then with each count held, in one attempt; the ratio is each server's own.
    def idle_row(x, count):
        for r in get(x, "idle", "rows") or []:
            if r.get("idle_subscribers") == count:
                return r
        return None

    def idle_get(x, count, key):
        r = idle_row(x, count)
        return None if r is None else r.get(key)

    conns = get(t, "idle", "connections") or 32
    ti0, ni0, pi0 = (idle_get(x, 0, "accepted_per_s") for x in (t, n, p))
    add("idle population", f"ingest, wrk -c{conns}, no subscribers: webhooks accepted/s", "",
        ti0, ni0, pi0, None, "/s")
    tl0, nl0, pl0 = (idle_get(x, 0, "mean_latency_ms") for x in (t, n, p))
    add("idle population", "… mean latency", "", tl0, nl0, pl0, None, " ms", 2)
    counts = sorted({r.get("idle_subscribers") for x in (t, n, p)
                     for r in get(x, "idle", "rows") or [] if r.get("idle_subscribers")})
    for count in counts:
        tv, nv, pv = (idle_get(x, count, "accepted_per_s") for x in (t, n, p))
        add("idle population", f"ingest with {count:,} idle WS subscribers on another channel",
            "", tv, nv, pv, None, "/s")
        tl, nl, pl = (idle_get(x, count, "mean_latency_ms") for x in (t, n, p))
        add("idle population", "… mean latency", "", tl, nl, pl, None, " ms", 2)
        rt, rn, rp = (get(x, "idle", f"ratio_{count}") for x in (t, n, p))
        add("idle population", f"… ÷ ingest with none (best attempt)", "≥ 0.90", rt, rn, rp,
            None if rt is None else rt >= 0.9, "", 2, ratios=False)

        # Every attempt's ratio: on a shared machine the spread says how far to trust one.
        def spread(x):
            v = [a.get(f"ratio_{count}") for a in x.get("idle_attempts", [])
                 if a.get(f"ratio_{count}") is not None]
            return "—" if not v else f"{min(v):.2f}–{max(v):.2f} ({len(v)})"
        rows.append(("idle population", "… ÷ none, spread over attempts", "", spread(t),
                     spread(n), "", spread(p), "", ""))
        # From the first attempt, as for the fan-out: a later one reuses the heap it grew.
        def first_idle_rss(x):
            attempts = [a for a in x.get("idle_attempts", []) if "error" not in a]
            for r in (attempts[0] if attempts else {}).get("rows", []):
                if r.get("idle_subscribers") == count:
                    return r.get("rss_per_connection_bytes")
            return None
        rt, rn, rp = (first_idle_rss(x) for x in (t, n, p))
        kib = lambda v: None if v is None else v / 1024
        add("idle population", f"server RSS per idle connection at {count:,} (first attempt)", "", kib(rt),
            kib(rn), kib(rp), None, " KiB")

    tf, nf, pf = (get(x, "fanout", "last_ms_median") for x in (t, n, p))
    subs = get(t, "fanout", "subscribers") or get(n, "fanout", "subscribers") or 10000
    tf1, nf1, pf1 = (get(x, "fanout", "first_ms_median") for x in (t, n, p))
    add("fan-out", f"1 message → {subs:,} WS subscribers: first receives (median of 5)",
        "≤ nchan", tf1, nf1, pf1, None if tf1 is None or nf1 is None else tf1 <= nf1, " ms")
    add("fan-out", f"1 message → {subs:,} WS subscribers: last receives (median of 5)", "≤ nchan",
        tf, nf, pf, None if tf is None or nf is None else tf <= nf, " ms")

    for q in ("p50", "p99"):
        tl, nl, pl = (get(x, "latency", f"{q}_ms") for x in (t, n, p))
        ok = None if tl is None else (tl <= 2.0 if q == "p99" else None)
        add("latency", f"POST sent → subscriber frame at 1,000 msg/s, {q}",
            "p99 ≤ 2 ms" if q == "p99" else "", tl, nl, pl, ok, " ms", 2)
    # The same frames, timed from the 2xx answer instead of the request: what is left once the
    # server has said "accepted" (for Tocsin: after the durable commit; the fsync is excluded).
    ta99, na99, pa99 = (get(x, "latency", "accepted_to_frame_p99_ms") for x in (t, n, p))
    add("latency", "2xx answer received → subscriber frame, p99", "", ta99, na99, pa99, None,
        " ms", 2)

    def cpu_per_msg(x):
        r = x.get("latency") or {}
        return None if r.get("server_cpu_pct") is None else r["server_cpu_pct"] / 100 * 1000 / r["rate"]
    tm, nm, pm = (cpu_per_msg(x) for x in (t, n, p))
    add("latency", "server CPU per message at 1,000 msg/s, 1 subscriber", "", tm, nm, pm, None,
        " ms", 3)
    th, nh, ph = (get(x, "fanout", "still_open") for x in (t, n, p))
    add("connections", "idle subscriber sockets held", "10,000", th, nh, ph,
        None if th is None else th >= 10000, "", 0)
    # From the first scenario that held 10,000 connections in each peer's process: a later one
    # starts with a heap the earlier already grew (malloc keeps freed memory), which would hide
    # the cost. The idle population runs before the fan-out when both run.
    def first_rss(x):
        idle = [a for a in x.get("idle_attempts", []) if "error" not in a]
        for r in (idle[0] if idle else {}).get("rows", []):
            if r.get("idle_subscribers") == 10000 and r.get("rss_per_connection_bytes"):
                return r["rss_per_connection_bytes"]
        attempts = [a for a in x.get("fanout_attempts", []) if "error" not in a]
        return (attempts[0] if attempts else x.get("fanout") or {}).get("rss_per_connection_bytes")
    tr, nr, pr = (first_rss(x) for x in (t, n, p))
    kib = lambda v: None if v is None else v / 1024
    add("connections", "server RSS per connection (first attempt)", "≤ 20 KiB", kib(tr), kib(nr), kib(pr),
        None if tr is None else tr <= 20 * 1024, " KiB")

    if history:
        runs = history.get("runs", [])
        cold = runs[0] if runs else {}
        warm = min(runs[1:], key=lambda r: r["first_page_ms"]) if len(runs) > 1 else cold
        note = " (file evicted from the page cache)" if cold.get("page_cache_dropped") else " (could not evict: warm)"
        add("app history", f"1,000,000 records: cold start to first row{note}", "≤ 300 ms",
            cold.get("first_page_ms"), None, None,
            None if cold.get("first_page_ms") is None else cold["first_page_ms"] <= 300, " ms")
        add("app history", "start to first row, warm", "≤ 300 ms", warm.get("first_page_ms"),
            None, None, None if warm.get("first_page_ms") is None else warm["first_page_ms"] <= 300,
            " ms")
        worst = max((r.get("search_list_ms") or 0) for r in runs[1:] or runs)
        add("app history", "FTS search, common word: count + first page (record list)",
            "≤ 50 ms", worst, None, None, worst <= 50, " ms")
        worst_q = max((r.get("search_query_ms") or 0) for r in runs[1:] or runs)
        add("app history", "FTS search, common word: first page query only", "≤ 50 ms",
            worst_q, None, None, worst_q <= 50, " ms")
        worst_rare = max((r.get("search_rare_list_ms") or 0) for r in runs[1:] or runs)
        add("app history", "FTS search, rare word (record list)", "≤ 50 ms", worst_rare, None,
            None, worst_rare <= 50, " ms")
        rss = max((r.get("rss_peak_bytes") or 0) for r in runs) / 1e6
        add("app history", "RSS (peak) of the process", "≤ 100 MB", rss, None, None, rss <= 100,
            " MB")
    if burst:
        add("app burst", "10,000 messages at once: records stored/s", "≥ 20,000/s",
            burst.get("stored_per_s"), None, None,
            burst.get("stored_per_s") is not None and burst["stored_per_s"] >= 20000, "/s")
        add("app burst", "longest main-loop stall" + (" (with notifier)" if burst.get("with_notifier") else ""),
            "≤ 16 ms", burst.get("longest_stall_ms"), None, None,
            burst.get("longest_stall_ms") is not None and burst["longest_stall_ms"] <= 16, " ms")
    if e2e:
        add("end to end", "webhook → Notify on the session bus at 100 msg/s, p50", "",
            e2e.get("p50_ms"), None, None, None, " ms", 2)
        add("end to end", f"p99 ({e2e.get('notified')} of {e2e.get('sent')} notified)",
            "p99 ≤ 10 ms", e2e.get("p99_ms"), None, None,
            e2e.get("p99_ms") is not None and 0 <= e2e["p99_ms"] <= 10, " ms", 2)

    m = relay.get("machine") or {}
    cpus = m.get("cpus") or os.cpu_count()
    mem = m.get("memory_bytes") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    loadavg = m.get("loadavg_at_start")
    print(f"Machine: {cpus} cores ({m.get('cpu_model', '?')}), {mem / 2**30:.1f} GiB memory, "
          f"kernel {m.get('kernel', os.uname().release)}; run {relay.get('started', '?')}"
          + (f"; load average at start {loadavg[0]:.2f}" if loadavg else ""))
    n_att = max((len(res.get(f"{sc}_attempts", [])) for res in peers.values()
                 for sc in ("idle", "ingest", "latency", "fanout")), default=0)
    if n_att > 1:
        print(f"Relay scenarios: best of {n_att} attempts per peer, peers alternating "
              "(highest rate, lowest time; every attempt is in relay.json)")
    v = relay.get("versions") or {}
    if v:
        print("Peers: " + "; ".join(f"{k}: {val}" for k, val in v.items()))
    print()
    print("| scenario | measure | target | Tocsin | nchan | Tocsin/nchan | pushpin | Tocsin/pushpin | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")

    # The generators: a figure is the server's only if its generator had CPU to spare.
    print()
    print("Load generators' and servers' CPU (% of one core, averaged over the scenario):")
    print()
    print("| scenario | peer | server | generator(s) | whole machine busy | of which other jobs |")
    print("|---|---|---|---|---|---|")
    for name, res in peers.items():
        for sc in ("idle", "ingest", "latency", "fanout"):
            r = res.get(sc)
            if not isinstance(r, dict):
                continue
            if "error" in r:
                print(f"| {sc} | {name} | error: {r['error'].splitlines()[0][:80]} | |")
                continue
            g = r.get("generator_cpu_pct") or {}
            gen = ", ".join(f"{k} {fmt(val, '%', 0)}" for k, val in g.items())
            busy = r.get("machine_busy_pct")
            ours = (r.get("server_cpu_pct") or 0) + sum(
                val for k, val in g.items() if val is not None and "during" not in k)
            other = None if busy is None else max(0.0, busy - ours)
            print(f"| {sc} | {name} | {fmt(r.get('server_cpu_pct'), '%', 0)} | {gen} | "
                  f"{fmt(busy, '%', 0)} of {100 * (os.cpu_count() or 1)}% | {fmt(other, '%', 0)} |")
        if res.get("error"):
            print(f"| (start) | {name} | error: {res['error'].splitlines()[0][:100]} | |")
    if burst:
        print(f"| app burst | tocsin core | {fmt(100 * burst.get('app_cpu_s', 0) * 1000 / max(1, burst.get('subscribe_to_last_ms', 1)), '%', 0)} (app process) | relay replay |")
    if e2e:
        print(f"| end to end | tocsin core | {fmt(e2e.get('process_cpu_pct'), '%', 0)} (app process incl. sender thread) | |")

    # Issue 16: the relay on PostgreSQL, 1-3 nodes and --workers=2, against SQLite (bench-cluster.js).
    cluster = load(directory, "cluster.json")
    if cluster and cluster.get("table"):
        print()
        print(f"Relay on PostgreSQL against the SQLite relay, same run ({cluster.get('started', '?')}; "
              f"{cluster.get('senders', '?')} senders over the nodes; fan-out: frames after one "
              "webhook, median of the rounds):")
        print()
        print(cluster["table"])


if __name__ == "__main__":
    main()
