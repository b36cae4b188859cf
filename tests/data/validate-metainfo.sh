#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# appstreamcli validate --pedantic on the built metainfo, offline, failing on any issue at all,
# pedantic hints included (appstreamcli itself passes them), but one:
# cid-contains-uppercase-letter, since the id io.github.tocsin.Tocsin follows GNOME's
# reverse-DNS-with-CamelCase convention (org.gnome.TextEditor has the same hint) and is also the
# D-Bus name, the GSettings schema and the history's folder: renaming it would orphan them.
set -u
out=$(appstreamcli validate --no-net --pedantic --explain "$1" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || exit 1
others=$(echo "$out" | grep -E '^[EWIP]: ' | grep -v ' cid-contains-uppercase-letter ')
if [ -n "$others" ]; then
  echo "Issues (pedantic ones count here):"
  echo "$others"
  exit 1
fi
