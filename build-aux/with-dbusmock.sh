#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Runs "$@" on a private D-Bus session bus that has python3-dbusmock's notification daemon,
# which advertises the "body" and "actions" capabilities. The test reads the daemon's calls
# back through org.freedesktop.DBus.Mock and emits ActionInvoked to play a click.
# Debian's python3-dbusmock lives in /usr/bin/python3 (the python3 on PATH may not have it).
# The accessibility bus runs as on every desktop (GTK talks AT-SPI to it); it is started here
# with its output sent away, since a bus activated on demand would inherit the test's stdout
# and print into its TAP stream.
set -eu
if [ "${TOCSIN_IN_PRIVATE_BUS:-}" != 1 ]; then
  # The accessibility bus's socket is $XDG_RUNTIME_DIR/at-spi/bus_<display> (~/.cache/at-spi/
  # without it): tests run in parallel on one Xvfb display would share, and unlink, one path.
  # Each run gets a runtime dir of its own.
  runtime=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-runtime.XXXXXX")
  trap 'rm -rf "$runtime"' EXIT INT TERM
  TOCSIN_IN_PRIVATE_BUS=1 XDG_RUNTIME_DIR="$runtime" dbus-run-session -- "$0" "$@"
  exit $?
fi
/usr/bin/python3 -m dbusmock --template notification_daemon \
  -p '{"capabilities": "body actions body-markup"}' >/dev/null 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT INT TERM
if [ -x /usr/libexec/at-spi-bus-launcher ]; then
  /usr/libexec/at-spi-bus-launcher --launch-immediately >/dev/null 2>&1 &
  a11y=$!
  trap 'kill $mock $a11y 2>/dev/null || true' EXIT INT TERM
  gdbus wait --session --timeout 20 org.a11y.Bus
fi
gdbus wait --session --timeout 20 org.freedesktop.Notifications
"$@"
