#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The Flatpak manifest parses for flatpak-builder (an unknown key is a warning, made fatal), is on
# a GNOME runtime with GTK >= 4.8 and libadwaita >= 1.2 (43 or later), and asks for exactly the
# minimal permissions: network, IPC, Wayland with X11 as fallback, the GPU, and sound (the ring
# of a calling channel: there is no portal for sound); no home, no filesystem, no bus names
# (notifications, file choosers, links and background go through portals, which need no
# permission).
set -eu
manifest=$(realpath "$1")
# flatpak-builder leaves a .flatpak-builder/ state directory where it runs: a temporary one.
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
(cd "$state" && G_DEBUG=fatal-warnings flatpak-builder --show-manifest "$manifest" >/dev/null)
/usr/bin/python3 - "$manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["id"] == "io.github.tocsin.Tocsin", m["id"]
assert m["runtime"] == "org.gnome.Platform" and m["sdk"] == "org.gnome.Sdk"
assert int(m["runtime-version"]) >= 43, m["runtime-version"]
want = {"--share=network", "--share=ipc", "--socket=wayland", "--socket=fallback-x11",
        "--device=dri", "--socket=pulseaudio"}
got = set(m["finish-args"])
assert got == want, "finish-args: unexpected %s, missing %s" % (got - want, want - got)
print("ok: %s on %s//%s with %s" % (m["id"], m["runtime"], m["runtime-version"],
                                    " ".join(sorted(got))))
PY
