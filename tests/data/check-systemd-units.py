#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks the relay's systemd units as built (data/tocsin-relay.service and
tocsin-relay@.service), with the built relay. TAP output.

  check-systemd-units.py RELAY SINGLE_UNIT TEMPLATE_UNIT

1. Every --option on each ExecStart line is one `tocsin-relay serve --help` lists.
2. The relay starts with each ExecStart's command line as systemd would run it (%i, %H and
   $TOCSIN_RELAY_ARGS expanded; the --config file, which would be in /etc, replaced by a temp one
   that listens on 127.0.0.1 port 0), prints "Listening on", and exits 0 on SIGTERM.
3. `systemd-analyze verify` finds nothing to say about either unit (nor an instance of the
   template); skipped, with the reason, when systemd-analyze is missing or cannot run here.
4. `systemd-analyze security --offline=yes`: the template's exposure is no higher than the single
   unit's (its hardening is the same); skipped as 3.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

results = []


def report(ok, name, note=""):
    results.append((ok, name, note))


def exec_start(path):
    """The ExecStart= command line of a unit file, continuation lines joined."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    lines = [line[len("ExecStart="):] for line in text.split("\n")
             if line.startswith("ExecStart=")]
    if len(lines) != 1:
        raise SystemExit(f"{path}: {len(lines)} ExecStart= lines, expected 1")
    return lines[0].split()


def options(argv):
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def check_help(relay, units):
    helptext = subprocess.run([relay, "serve", "--help"], capture_output=True, text=True,
                              check=True).stdout
    known = set(re.findall(r"^\s+(--[a-z0-9-]+)", helptext, re.M))
    for unit in units:
        used = options(exec_start(unit))
        unknown = [o for o in used if o not in known]
        report(not unknown and "--config" in used,
               f"{os.path.basename(unit)}: its options {' '.join(used)} are serve's",
               f"not in serve --help: {unknown}" if unknown else "")


def check_start(relay, unit, tmp):
    name = os.path.basename(unit)
    data_dir = os.path.join(tmp, "data-" + name)
    config = os.path.join(tmp, "relay-" + name + ".conf")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"[relay]\nlisten=127.0.0.1:0\ndata-dir={data_dir}\n")
    argv = [relay]
    for arg in exec_start(unit)[1:]:
        if arg == "$TOCSIN_RELAY_ARGS":
            continue   # empty: /etc/default/tocsin-relay or NAME.env sets nothing
        if arg.startswith("--config="):
            arg = "--config=" + config
        argv.append(arg.replace("%i", "test").replace("%H", socket.gethostname()))
    env = dict(os.environ)
    env.pop("TOCSIN_RELAY_DATABASE", None)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    # A bound on a hang, not a timing: the relay prints the line once it listens.
    try:
        first = process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        first, err = "", "no answer within 60 s"
    report(first.startswith("Listening on http://127.0.0.1:") and process.returncode == 0,
           f"{name}: the relay serves with its command line and stops on SIGTERM",
           f"printed {first!r}, exit {process.returncode}, stderr {err.strip()!r}")


def analyze(args):
    return subprocess.run(["systemd-analyze"] + args, capture_output=True, text=True)


def check_systemd(relay, units, tmp):
    why = None
    if shutil.which("systemd-analyze") is None:
        why = "systemd-analyze is not installed"
    else:
        # A unit that is certainly right: if verifying it fails, it is this machine.
        probe = os.path.join(tmp, "tocsin-probe.service")
        with open(probe, "w", encoding="utf-8") as f:
            f.write("[Service]\nExecStart=/bin/true\n")
        result = analyze(["verify", probe])
        if result.returncode != 0 or result.stderr.strip():
            why = "systemd-analyze verify cannot run here: " + result.stderr.strip()
    if why:
        report(True, "systemd-analyze verify", "SKIP " + why)
        report(True, "systemd-analyze security", "SKIP " + why)
        return

    copies = {}
    for unit in units:
        # The unit names @bindir@/tocsin-relay, not installed here: point it at the built one.
        with open(unit, encoding="utf-8") as f:
            text = f.read()
        command = exec_start(unit)[0]
        copy = os.path.join(tmp, os.path.basename(unit))
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text.replace(command, relay))
        copies[os.path.basename(unit)] = copy
        if copy.endswith("@.service"):
            instance = copy.replace("@.service", "@node1.service")
            shutil.copyfile(copy, instance)
            copies[os.path.basename(instance)] = instance
    for name, copy in copies.items():
        result = analyze(["verify", copy])
        report(result.returncode == 0 and not result.stderr.strip(),
               f"systemd-analyze verify {name}",
               f"exit {result.returncode}: {result.stderr.strip()}")

    exposure = {}
    for name in ("tocsin-relay.service", "tocsin-relay@node1.service"):
        result = analyze(["security", "--offline=yes", copies[name]])
        found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
        if found is None:
            report(True, "systemd-analyze security",
                   "SKIP it cannot rate units offline here: " + result.stderr.strip())
            return
        exposure[name] = float(found.group(1))
    single, node = exposure["tocsin-relay.service"], exposure["tocsin-relay@node1.service"]
    report(node <= single,
           f"systemd-analyze security: exposure of a node {node} <= the single relay's {single}",
           "" if node <= single else "the template is less hardened than tocsin-relay.service")


def main():
    relay, single, template = sys.argv[1:4]
    relay = os.path.abspath(relay)
    units = [single, template]
    with tempfile.TemporaryDirectory(prefix="tocsin-units-") as tmp:
        check_help(relay, units)
        for unit in units:
            check_start(relay, unit, tmp)
        check_systemd(relay, units, tmp)
    print(f"1..{len(results)}")
    failed = 0
    for number, (ok, name, note) in enumerate(results, 1):
        if note.startswith("SKIP "):
            print(f"ok {number} - {name} # SKIP {note[5:]}")
            continue
        print(f"{'ok' if ok else 'not ok'} {number} - {name}")
        if note and not ok:
            print("# " + note.replace("\n", "\n# "))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
