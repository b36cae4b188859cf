#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs the Debian 12 packages that building, running and testing Tocsin need, when any is
# missing. Needs root (or sudo) only when something has to be installed.
set -eu

packages="
  meson ninja-build pkg-config gcc gettext itstool
  libglib2.0-dev libglib2.0-bin libgtk-4-dev libadwaita-1-dev libsoup-3.0-dev
  libjson-glib-dev libsqlite3-dev libnotify-dev libgsound-dev sound-theme-freedesktop libmd4c-dev
  libgmime-3.0-dev libpq-dev postgresql haproxy
  desktop-file-utils appstream
  xvfb xauth dbus dbus-x11 at-spi2-core python3-dbusmock python3-websockets
  python3-pyatspi python3-yaml xdotool
  curl ca-certificates openssl locales valgrind
  chromium
  apprise
  swaks
"
# Benchmarks, fuzzing and the package test want more; `build-aux/install-deps.sh
# bench|fuzz|package` adds them (package: building and checking the Debian packages of
# build-aux/debian, and the Flatpak manifest's check).
for extra in "$@"; do
  case "$extra" in
    bench) packages="$packages nginx-light libnginx-mod-nchan pushpin wrk node-ws nodejs" ;;
    fuzz) packages="$packages clang libclang-rt-14-dev" ;;
    package) packages="$packages dpkg-dev debhelper fakeroot lintian systemd flatpak-builder" ;;
    *) echo "install-deps.sh: unknown extra '$extra' (known: bench, fuzz, package)" >&2; exit 2 ;;
  esac
done

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "Installing Debian packages:$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends $missing
