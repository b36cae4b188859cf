#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks docs/examples/kubernetes.yaml with the built relay, without a cluster. TAP output.

  check-kubernetes-manifest.py RELAY MANIFEST

Parsed with Debian's python3-yaml (build-aux/install-deps.sh installs it), it must hold a Secret,
a ConfigMap, a Deployment of 3 replicas, a Service and an Ingress that refer to each other by the
names and ports they use. The container's arguments are `tocsin-relay serve` options (each in
`serve --help`); the database's URL comes from the Secret through TOCSIN_RELAY_DATABASE, the
node's name from the pod's (the downward API). Then the relay runs with those arguments and the
ConfigMap's file, as the pod would (listening on 127.0.0.1 port 0 instead of 0.0.0.0:8080,
its data dir in a temp dir): with the Secret's URL it exits 1 saying it cannot connect (the URL
is taken: a bad one is a usage error, exit 2); without it, on SQLite, both probes' paths answer
200, and SIGTERM stops it within the grace period the manifest gives.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request

try:
    import yaml
except ImportError:
    print("1..0 # SKIP python3-yaml is not installed (build-aux/install-deps.sh installs it)")
    sys.exit(0)

results = []


def report(ok, name, note=""):
    results.append((bool(ok), name, note))


def one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    report(len(found) == 1, f"one {kind}", f"found {len(found)}")
    return found[0] if found else {}


def expand(arg, env):
    """Kubernetes' $(VAR) in args, from the container's plain and downward-API variables."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)),
                  arg)


def main():
    relay, manifest = os.path.abspath(sys.argv[1]), sys.argv[2]
    with open(manifest, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]

    secret = one(docs, "Secret")
    config_map = one(docs, "ConfigMap")
    deployment = one(docs, "Deployment")
    service = one(docs, "Service")
    ingress = one(docs, "Ingress")

    spec = deployment.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    report(spec.get("replicas") == 3, "the Deployment runs 3 replicas")
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    report(spec.get("selector", {}).get("matchLabels", {}).items() <= labels.items()
           and service.get("spec", {}).get("selector", {}).items() <= labels.items(),
           "the Deployment's and the Service's selectors match the pods' labels")
    container = (pod.get("containers") or [{}])[0]
    command = container.get("command", [])
    args = container.get("args", [])
    report(command and os.path.basename(command[0]) == "tocsin-relay" and args[:1] == ["serve"],
           "the container runs tocsin-relay serve")

    helptext = subprocess.run([relay, "serve", "--help"], capture_output=True, text=True,
                              check=True).stdout
    known = set(re.findall(r"^\s+(--[a-z0-9-]+)", helptext, re.M))
    used = [a.split("=", 1)[0] for a in args[1:]]
    unknown = [o for o in used if o not in known or not o.startswith("--")]
    report(used and not unknown, f"its arguments {' '.join(used)} are serve's options",
           f"not in serve --help: {unknown}")

    env_entries = {e["name"]: e for e in container.get("env", [])}
    secret_ref = env_entries.get("TOCSIN_RELAY_DATABASE", {}).get("valueFrom", {}).get(
        "secretKeyRef", {})
    secret_data = dict(secret.get("stringData", {}))
    report(secret_ref.get("name") == secret.get("metadata", {}).get("name")
           and secret_ref.get("key") in secret_data
           and not any("postgres" in a for a in args),
           "TOCSIN_RELAY_DATABASE comes from the Secret, and no URL is on the command line")
    pod_name = env_entries.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {})
    report(pod_name.get("fieldPath") == "metadata.name" and "--node-name=$(POD_NAME)" in args,
           "--node-name is the pod's name (downward API)")

    # The ConfigMap's file, where the container's --config looks for it.
    config_arg = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), "")
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    conf_text = None
    for name, path in mounts.items():
        source = volumes.get(name, {}).get("configMap", {})
        if source.get("name") == config_map.get("metadata", {}).get("name") and \
                os.path.dirname(config_arg) == path:
            conf_text = config_map.get("data", {}).get(os.path.basename(config_arg))
    report(conf_text is not None, "--config names the ConfigMap's file as mounted",
           f"--config={config_arg}, mounts {mounts}")
    conf_text = conf_text or "[relay]\n"

    # Ports: the probes' named port is the container's, the Service's target and the config's.
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    listen = re.search(r"^listen=.*:(\d+)\s*$", conf_text, re.M)
    probes = {kind: container.get(kind, {}).get("httpGet", {})
              for kind in ("readinessProbe", "livenessProbe")}
    svc_ports = service.get("spec", {}).get("ports", [])
    backend = ingress.get("spec", {}).get("rules", [{}])[0].get("http", {}).get("paths", [{}])[0] \
        .get("backend", {}).get("service", {})
    report(listen and all(ports.get(p.get("port")) == int(listen.group(1))
                          for p in probes.values())
           and any(p.get("targetPort") in ports for p in svc_ports)
           and backend.get("name") == service.get("metadata", {}).get("name")
           and backend.get("port", {}).get("name") in [p.get("name") for p in svc_ports],
           "the probes, the Service and the Ingress reach the port the relay listens on")
    annotations = ingress.get("metadata", {}).get("annotations", {})
    report(int(annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")) > 90,
           "the Ingress keeps quiet streams past the relay's 30 s pings and 90 s limit")

    sleep = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    grace = pod.get("terminationGracePeriodSeconds", 30)
    pre_stop = int(sleep[-1]) if sleep and sleep[-1].isdigit() else 0
    # The relay waits up to 3 s for its subscribers to go after SIGTERM (docs/configuration.md).
    report(pre_stop > 0 and grace >= pre_stop + 3 + 1,
           f"preStop sleeps {pre_stop} s and the grace period ({grace} s) leaves the relay its 3 s")

    with tempfile.TemporaryDirectory(prefix="tocsin-k8s-") as tmp:
        conf = os.path.join(tmp, "tocsin-relay.conf")
        data_dir = os.path.join(tmp, "data")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(re.sub(r"^listen=.*$", "listen=127.0.0.1:0",
                           re.sub(r"^data-dir=.*$", "data-dir=" + data_dir, conf_text,
                                  flags=re.M), flags=re.M))
        env = dict(os.environ)
        env.pop("TOCSIN_RELAY_DATABASE", None)
        env["POD_NAME"] = "tocsin-relay-7d9f8c6b5-x2v4q"
        argv = [expand(a, env).replace("--config=" + config_arg, "--config=" + conf)
                for a in args]

        # The Secret's URL: taken, and the database is not there.
        with_db = dict(env)
        with_db["TOCSIN_RELAY_DATABASE"] = secret_data.get(secret_ref.get("key"), "")
        result = subprocess.run([relay] + argv, capture_output=True, text=True, env=with_db,
                                timeout=60)
        report(result.returncode == 1 and "Could not connect to PostgreSQL" in result.stderr
               and "invalid" not in result.stderr,
               "the Secret's URL is one the relay takes (it then tries to connect)",
               f"exit {result.returncode}: {result.stderr.strip()}")

        # On SQLite, the probes as the kubelet sends them.
        process = subprocess.Popen([relay] + argv, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
        try:
            first = process.stdout.readline()
            base = first.split("Listening on ", 1)[-1].strip()
            for kind, probe in probes.items():
                try:
                    with urllib.request.urlopen(base + probe.get("path", "?"), timeout=30) as r:
                        status, body = r.status, r.read().decode()
                except Exception as e:   # an HTTP error or no answer: the report says which
                    status, body = getattr(e, "code", None), str(e)
                report(status == 200, f"{kind} GET {probe.get('path')} answers 200",
                       f"{base}: {status} {body}")
                if probe.get("path") == "/v1/health" and status == 200:
                    report(json.loads(body) == {"healthy": True}, "/v1/health says healthy")
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
            report(process.returncode == 0, f"SIGTERM stops it, status 0, within {grace} s",
                   f"exit {process.returncode}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    print(f"1..{len(results)}")
    failed = 0
    for number, (ok, name, note) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {number} - {name}")
        if not ok and note:
            print("# " + str(note).replace("\n", "\n# "))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
