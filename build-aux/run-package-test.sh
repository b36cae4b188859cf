#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the Debian packages tocsin and tocsin-relay from build-aux/debian (copied to debian/ in
# a temporary copy of the tree), runs lintian on them, installs them with apt-get, and tries the
# installed files only, as an administrator and a user would:
#   - the app's desktop file, metainfo, icon, GSettings schema and French catalogue are found in
#     the system paths (no GSETTINGS_SCHEMA_DIR, no TOCSIN_LOCALEDIR);
#   - the relay's unit starts: under systemd with `systemctl start` when systemd is PID 1;
#     otherwise this script plays systemd: it runs the unit's own ExecStart line, read from the
#     installed unit file, as an unprivileged user from the DynamicUser range, with the
#     StateDirectory the unit names, STATE_DIRECTORY and UMask=0077;
#   - a channel is created with the installed CLI, `tocsin-relay channel create
#     --config=/etc/tocsin-relay.conf`, as the README tells administrators;
#   - the installed app, under Xvfb on a private session bus with python3-dbusmock's notification
#     server (build-aux/with-dbusmock.sh), subscribes with `tocsin --subscribe=`, a webhook rings
#     it (the notification server's GetCalls show it) and `tocsin --export-records=-` has it;
#   - `apt-get remove` leaves no tocsin or tocsin-relay process, and says the relay's data is
#     kept; `apt-get purge` says it deletes the data, and does.
# It leaves the machine as it was: the packages purged, the state directory gone, the list of
# installed packages as before (checked). Needs root (or sudo). TAP output; exit 0 when every
# check passed, 1 when one failed, 77 (skip) when it cannot run here without changing the
# machine (tocsin already installed, say). Build without tests: DEB_BUILD_OPTIONS=nocheck, since
# the test command (build-aux/run-tests.sh) runs every suite itself.
#
#   build-aux/run-package-test.sh              # 1-2 minutes on 2 cores
#   TOCSIN_PACKAGE_KEEP=1 build-aux/run-package-test.sh   # keep the .debs and logs (printed)
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    echo "1..0 # SKIP the package test installs packages: run it as root or with sudo"
    exit 77
  fi
  sudo="sudo -n"
fi

unit_name=tocsin-relay.service
state=/var/lib/tocsin-relay
for p in tocsin tocsin-relay; do
  if dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[ihcuUtTfF]'; then
    echo "1..0 # SKIP $p is installed here; the test would remove it"
    exit 77
  fi
done
if [ -e "$state" ] || [ -e /var/lib/private/tocsin-relay ] || [ -e /etc/tocsin-relay.conf ]; then
  echo "1..0 # SKIP $state or /etc/tocsin-relay.conf exists; the test would delete it"
  exit 77
fi

"$top/build-aux/install-deps.sh" package || { echo "not ok 1 - the build dependencies install"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-package.XXXXXX")
chmod 755 "$work"
log="$work/log"
n=0; failures=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() {
  n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $1"
  [ -s "$log" ] && tail -n 30 "$log" | sed 's/^/# /'
  return 0
}
check() {  # check "what" command...: runs the command with its output in $log
  local what=$1; shift
  if "$@" >"$log" 2>&1; then pass "$what"; else fail "$what"; fi
}

relay_pid=""
installed=0
finish() {
  [ -n "$relay_pid" ] && $sudo kill "$relay_pid" 2>/dev/null
  if [ -d /run/systemd/system ] && [ "$installed" = 1 ]; then
    $sudo systemctl stop "$unit_name" 2>/dev/null
    $sudo rm -rf "/run/systemd/system/$unit_name.d"
  fi
  if [ "$installed" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -q tocsin tocsin-relay >/dev/null 2>&1
  fi
  $sudo rm -rf "$state" /var/lib/private/tocsin-relay
  if [ "${TOCSIN_PACKAGE_KEEP:-0}" = 1 ]; then
    echo "# kept: $work"
  else
    $sudo rm -rf "$work"
  fi
  echo "# the package test took $(( $(date +%s) - started )) s"
  echo "1..$n"
}
trap finish EXIT
trap 'exit 1' INT TERM

packages_before=$(dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' | sort)

# ---- build -------------------------------------------------------------------------------
# A copy of the tree: what git tracks or would track (not build trees), plus debian/.
src="$work/tocsin-0.1.0"
mkdir -p "$src"
(cd "$top" && git ls-files -co --exclude-standard -z | tar -cf - --null -T -) | tar -C "$src" -xf -
cp -r "$top/build-aux/debian" "$src/debian"
if (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
      dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
  pass "dpkg-buildpackage builds tocsin and tocsin-relay"
else
  fail "dpkg-buildpackage builds tocsin and tocsin-relay"
  exit 1
fi
debs=("$work"/tocsin_*.deb "$work"/tocsin-relay_*.deb)

# Errors and warnings fail; what cannot be fixed is overridden, with a reason, in
# build-aux/debian/*.lintian-overrides (and listed in build-aux/debian/README).
if lintian --fail-on error,warning -I "$work"/tocsin_*.changes >"$log" 2>&1; then
  pass "lintian: no error, no warning ($(grep -c '^[IP]:' "$log") notes)"
  sed 's/^/# /' "$log"
else
  fail "lintian: no error, no warning"
fi

# ---- install -----------------------------------------------------------------------------
# No Recommends: the machine must end as it began, and the packages it depends on are the
# build's own dependencies, already here.
installed=1  # from here on, the exit purges them (even after a failed or interrupted install)
if DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
     "${debs[@]}" >"$log" 2>&1; then
  pass "apt-get install ./tocsin_*.deb ./tocsin-relay_*.deb"
else
  fail "apt-get install ./tocsin_*.deb ./tocsin-relay_*.deb"
  exit 1
fi

# ---- the app's files, from the system paths ------------------------------------------------
app_id=io.github.tocsin.Tocsin
clean_env=(env -u GSETTINGS_SCHEMA_DIR -u TOCSIN_LOCALEDIR -u XDG_DATA_DIRS -u GSETTINGS_BACKEND
           -u LANGUAGE -u LC_MESSAGES -u LANG LC_ALL=C.UTF-8)
check "the desktop file is valid: /usr/share/applications/$app_id.desktop" \
  desktop-file-validate "/usr/share/applications/$app_id.desktop"
check "the metainfo is valid: /usr/share/metainfo/$app_id.metainfo.xml" \
  appstreamcli validate --no-net "/usr/share/metainfo/$app_id.metainfo.xml"
# The desktop database (the package's trigger) makes it the handler of tocsin:// links.
check "GIO finds the app as the handler of tocsin:// links" \
  sh -c "env HOME=$work ${clean_env[*]} gio mime x-scheme-handler/tocsin | grep -q $app_id.desktop"
check "the icon is in the hicolor theme" \
  test -f "/usr/share/icons/hicolor/scalable/apps/$app_id.svg" -a \
       -f "/usr/share/icons/hicolor/symbolic/apps/$app_id-symbolic.svg"
check "the GSettings schema is compiled in the system's schemas" \
  sh -c "${clean_env[*]} gsettings list-keys $app_id | grep -qx autostart"
english="Subscribe to the channel of this subscribe link without asking"
french=$("${clean_env[@]}" LANGUAGE=fr gettext -d tocsin "$english")
if [ "$french" != "$english" ] &&
   "${clean_env[@]}" LANGUAGE=fr /usr/bin/tocsin --help 2>&1 | grep -qF "$french"; then
  pass "LANGUAGE=fr tocsin --help speaks French from /usr/share/locale (\"$french\")"
else
  fail "LANGUAGE=fr tocsin --help speaks French from /usr/share/locale (got \"$french\")"
fi

# ---- the relay, as its unit runs it ----------------------------------------------------------
unit=/lib/systemd/system/$unit_name
[ -f "$unit" ] || unit=/usr/lib/systemd/system/$unit_name
relay_out="$work/relay.out"
base=""
if [ -d /run/systemd/system ]; then
  # A runtime drop-in (gone at reboot, and removed below) asks for any free port.
  $sudo mkdir -p "/run/systemd/system/$unit_name.d"
  printf '[Service]\nEnvironment=TOCSIN_RELAY_ARGS=--listen=127.0.0.1:0\n' |
    $sudo tee "/run/systemd/system/$unit_name.d/smoke-test.conf" >/dev/null
  $sudo systemctl daemon-reload
  since=$(date '+%Y-%m-%d %H:%M:%S')
  check "systemctl start tocsin-relay" $sudo systemctl start "$unit_name"
  for _ in $(seq 100); do
    $sudo journalctl -q -u "$unit_name" --since "$since" -o cat >"$relay_out" 2>/dev/null
    base=$(sed -n 's|^Listening on \(http://[^ ]*[0-9]\)/\{0,1\}$|\1|p' "$relay_out" | head -n 1)
    [ -n "$base" ] && break
    sleep 0.1
  done
  owner=$(stat -L -c %u "$state" 2>/dev/null)
else
  # No systemd here: run the unit's ExecStart as systemd would, with what its [Service] says.
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  grep -qx 'DynamicUser=yes' "$unit" && grep -qx 'StateDirectory=tocsin-relay' "$unit" &&
    grep -qx 'UMask=0077' "$unit" || fail "the unit has DynamicUser, StateDirectory and UMask"
  # A user from systemd's DynamicUser range that nothing uses.
  uid=61184
  while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null ||
        pgrep -U "$uid" >/dev/null; do uid=$((uid + 1)); done
  $sudo install -d -m 0700 -o "$uid" -g "$uid" "$state"
  # systemd's word splitting of an unquoted $VAR, with TOCSIN_RELAY_ARGS asking for any port.
  TOCSIN_RELAY_ARGS="--listen=127.0.0.1:0"
  read -r -a argv <<<"${exec_start//\$TOCSIN_RELAY_ARGS/$TOCSIN_RELAY_ARGS}"
  echo "# ExecStart (no systemd here; run as uid $uid): ${argv[*]}"
  $sudo env -i PATH=/usr/bin:/bin STATE_DIRECTORY="$state" \
    setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs \
    sh -c 'umask 0077; exec "$@"' sh "${argv[@]}" >"$relay_out" 2>&1 &
  for _ in $(seq 100); do
    base=$(sed -n 's|^Listening on \(http://[^ ]*[0-9]\)/\{0,1\}$|\1|p' "$relay_out" | head -n 1)
    [ -n "$base" ] && break
    sleep 0.1
  done
  relay_pid=$(pgrep -U "$uid" -x tocsin-relay | head -n 1)
  owner=$uid
fi
cp "$relay_out" "$log"
if [ -n "$base" ] && [ "$(stat -L -c '%u %a' "$state" 2>/dev/null)" = "$owner 700" ] &&
   [ "$owner" != 0 ]; then
  pass "the relay runs as its unit says: listening on $base, $state 0700 owned by uid $owner"
else
  fail "the relay runs as its unit says (base '$base', $state: $(stat -L -c '%U %a' "$state" 2>&1))"
  exit 1
fi

# As root, as the README says; the store is the one /etc/tocsin-relay.conf names.
channel="$work/channel.json"
if $sudo tocsin-relay channel create --config=/etc/tocsin-relay.conf --name='Smoke test' \
     --title='Smoke {{server_name}}' --body='CPU at {{cpu_usage}}%' --json >"$channel" 2>"$log"
then
  pass "tocsin-relay channel create --config=/etc/tocsin-relay.conf"
else
  fail "tocsin-relay channel create --config=/etc/tocsin-relay.conf"
  exit 1
fi
field() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
            "$channel" "$1"; }
webhook=$(field webhook_url)
subscribe=$(field subscribe_url)
case "$webhook" in
  "$base"/t/*) pass "its webhook URL is on the running relay" ;;
  *) fail "its webhook URL is on the running relay ($webhook, relay at $base)" ;;
esac

# ---- the installed app subscribes, a webhook rings it ---------------------------------------
home="$work/home"
mkdir -p "$home" "$work/runtime"
cat >"$work/app.sh" <<'EOF'
#!/bin/bash
# On the private bus of with-dbusmock.sh, as a user: a HOME of its own, the system's schemas
# and catalogues, the default GSettings backend.
set -u
/usr/bin/tocsin --background >"$WORK/app.out" 2>&1 &
app=$!
gdbus wait --session --timeout 30 io.github.tocsin.Tocsin || echo "no-app"
if /usr/bin/tocsin --subscribe="$SUBSCRIBE" >>"$WORK/app.out" 2>&1; then echo subscribed; fi
curl -s --max-time 10 "$WEBHOOK?server_name=Production&cpu_usage=95" >"$WORK/webhook.json"
for _ in $(seq 200); do
  gdbus call --session --dest org.freedesktop.Notifications \
    --object-path /org/freedesktop/Notifications \
    --method org.freedesktop.DBus.Mock.GetCalls >"$WORK/calls" 2>/dev/null
  grep -q "Smoke Production" "$WORK/calls" && { echo rang; break; }
  sleep 0.1
done
/usr/bin/tocsin --export-records=- >"$WORK/records.jsonl" 2>>"$WORK/app.out" && echo exported
# As a logout ends it: SIGTERM quits the way Quit does.
kill -TERM "$app"
wait "$app" && echo quit
EOF
chmod +x "$work/app.sh"
chmod -R a+rX "$work"
env -i PATH=/usr/bin:/bin HOME="$home" USER="$(id -un)" XDG_RUNTIME_DIR="$work/runtime" \
  LC_ALL=C.UTF-8 GSK_RENDERER=cairo \
  WORK="$work" SUBSCRIBE="$subscribe" WEBHOOK="$webhook" \
  xvfb-run -a -s "-screen 0 1280x1024x24" "$top/build-aux/with-dbusmock.sh" "$work/app.sh" \
  >"$work/app.status" 2>&1
cat "$work/app.out" "$work/app.status" >"$log" 2>/dev/null
if grep -qx subscribed "$work/app.status"; then
  pass "the installed app subscribes: tocsin --subscribe=$subscribe"
else
  fail "the installed app subscribes: tocsin --subscribe=$subscribe"
fi
if grep -q '"title":"Smoke Production"' "$work/webhook.json" && grep -qx rang "$work/app.status"
then
  pass "a webhook rings it: Notify(\"Smoke Production\") on the notification server"
else
  cat "$work/webhook.json" "$work/calls" >>"$log" 2>/dev/null
  fail "a webhook rings it: Notify(\"Smoke Production\") on the notification server"
fi
if grep -qx exported "$work/app.status" && grep -q 'Smoke Production' "$work/records.jsonl"; then
  pass "tocsin --export-records=- has the record"
else
  fail "tocsin --export-records=- has the record"
fi
if grep -qx quit "$work/app.status"; then pass "SIGTERM quits the app"; else fail "SIGTERM quits the app"; fi

# ---- remove, purge -------------------------------------------------------------------------
# Under systemd the package's prerm stops the service (deb-systemd-invoke stop). That script
# does nothing without systemd, so here the stand-in for systemd stops what it started.
if [ ! -d /run/systemd/system ] && [ -n "$relay_pid" ]; then
  $sudo kill -TERM "$relay_pid"
  for _ in $(seq 100); do kill -0 "$relay_pid" 2>/dev/null || break; sleep 0.1; done
  relay_pid=""
fi
if [ -d /run/systemd/system ]; then
  $sudo rm -rf "/run/systemd/system/$unit_name.d"
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -q tocsin tocsin-relay >"$log" 2>&1
remove_rc=$?
# Processes of the installed programs (after removal the link says "(deleted)"); other
# engineers' tocsin-relay from a build tree may run beside this test and do not count.
installed_processes() {
  for exe in /proc/[0-9]*/exe; do
    case $($sudo readlink "$exe" 2>/dev/null) in
      /usr/bin/tocsin|/usr/bin/tocsin-relay|"/usr/bin/tocsin (deleted)"|\
      "/usr/bin/tocsin-relay (deleted)")
        pid=${exe#/proc/}; pid=${pid%/exe}
        echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" ;;
    esac
  done
}
left=$(installed_processes)
if [ $remove_rc -eq 0 ] && [ -z "$left" ] && [ ! -e /usr/bin/tocsin ] &&
   [ ! -e /usr/bin/tocsin-relay ]; then
  pass "apt-get remove leaves no tocsin or tocsin-relay process"
else
  echo "left: $left" >>"$log"
  fail "apt-get remove leaves no tocsin or tocsin-relay process"
fi
if grep -q "the relay's data is kept in $state" "$log" && [ -e "$state/relay.db" ]; then
  pass "apt-get remove keeps the relay's data and says so"
else
  fail "apt-get remove keeps the relay's data and says so"
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -q tocsin tocsin-relay >"$log" 2>&1
purge_rc=$?
if [ $purge_rc -eq 0 ] && grep -q "deleting the relay's data in $state" "$log" &&
   [ ! -e "$state" ] && [ ! -e /var/lib/private/tocsin-relay ] &&
   [ ! -e /etc/tocsin-relay.conf ]; then
  installed=0
  pass "apt-get purge says it deletes the relay's data, and does"
else
  fail "apt-get purge says it deletes the relay's data, and does"
fi

packages_after=$(dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' | sort)
if [ "$packages_before" = "$packages_after" ]; then
  pass "the installed packages are as before"
else
  diff <(echo "$packages_before") <(echo "$packages_after") >"$log"
  fail "the installed packages are as before"
fi

[ "$failures" -eq 0 ]
