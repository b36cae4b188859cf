#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Walks a running Tocsin over AT-SPI, as a screen reader would, and says what is wrong.

Run by tests/test-ui-a11y.c against its own process, on the test's private bus (the
accessibility bus comes from build-aux/with-dbusmock.sh), with Debian's python3-pyatspi:

  a11y-walk.py --pid PID --window TITLE
      every actionable widget showing in the window titled TITLE (buttons, toggles, switches,
      entries, menu buttons, links...) has a role and a non-empty name
  a11y-walk.py --pid PID --window TITLE --keyboard --xid XID --rows N
      the records list is walked with the keyboard alone (xdotool key presses to X window XID):
      Tab reaches a record, Down moves through N records one by one, each announced with its
      text; Enter opens its details, Escape closes them

Prints one line per check to stdout (the C test copies them into its TAP log) and exits 1 on
the first failure, naming the widget by its path of roles and names.
"""

import argparse
import re
import subprocess
import sys
import time

import pyatspi

# What a user can act on. A widget of one of these roles with no name is read as "button" (or
# nothing) by a screen reader.
ACTIONABLE = {
    pyatspi.ROLE_PUSH_BUTTON,
    pyatspi.ROLE_TOGGLE_BUTTON,
    pyatspi.ROLE_CHECK_BOX,
    pyatspi.ROLE_RADIO_BUTTON,
    pyatspi.ROLE_ENTRY,
    pyatspi.ROLE_TEXT,          # an editable text view (checked only when editable)
    pyatspi.ROLE_PASSWORD_TEXT,
    pyatspi.ROLE_SPIN_BUTTON,
    pyatspi.ROLE_COMBO_BOX,
    pyatspi.ROLE_LINK,
    pyatspi.ROLE_SLIDER,
    pyatspi.ROLE_MENU_ITEM,
    pyatspi.ROLE_CHECK_MENU_ITEM,
    pyatspi.ROLE_RADIO_MENU_ITEM,
}
# pyatspi has no constant for GTK's switch role in every version.
SWITCH = getattr(pyatspi, "ROLE_SWITCH", None)
if SWITCH is not None:
    ACTIONABLE.add(SWITCH)


def fail(message):
    print("FAIL: " + message)
    sys.stdout.flush()
    sys.exit(1)


def wait_for(predicate, what, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def find_app(pid):
    desktop = pyatspi.Registry.getDesktop(0)
    for app in desktop:
        try:
            if app is not None and app.get_process_id() == pid:
                return app
        except Exception:  # an application going away mid-walk
            continue
    return None


def showing(acc):
    # GTK 4.8 sets "showing" on windows only; "visible" is what it keeps on every widget.
    try:
        states = acc.getState()
        return states.contains(pyatspi.STATE_SHOWING) or states.contains(pyatspi.STATE_VISIBLE)
    except Exception:
        return False


def describe(acc):
    try:
        return "%s “%s”" % (acc.getRoleName(), acc.name)
    except Exception:
        return "?"


def find_window(app, title):
    for window in app:
        if window is not None and window.name == title and showing(window):
            return window
    return None


def walk(acc, path, out):
    """Every showing descendant, with the path of roles and names that leads to it."""
    for child in acc:
        if child is None or not showing(child):
            continue
        here = path + [describe(child)]
        out.append((child, here))
        walk(child, here, out)


def check_names(window):
    nodes = []
    walk(window, [describe(window)], nodes)
    checked = 0
    problems = []
    for acc, path in nodes:
        role = acc.getRole()
        if role not in ACTIONABLE:
            continue
        if role == pyatspi.ROLE_TEXT and not acc.getState().contains(pyatspi.STATE_EDITABLE):
            continue
        checked += 1
        name = (acc.name or "").strip()
        if role == pyatspi.ROLE_INVALID or acc.getRoleName() in ("", "invalid", "unknown"):
            problems.append("no role: " + " / ".join(path))
        elif not name:
            problems.append("no name: " + " / ".join(path))
        # A mnemonic read out: "_Retry Retry", "C_reate Create" (GTK 4.8 does it to buttons with
        # use-underline unless they are given a name).
        elif any("_" in word and word.replace("_", "") in name.replace(word, "")
                 for word in name.split()):
            problems.append("a mnemonic underscore in the name: " + " / ".join(path))
        # GTK 4.8 joins a label and the widget it is labelled by: "Retry Retry".
        elif len(name.split()) % 2 == 0 and name.split()[:len(name.split()) // 2] \
                == name.split()[len(name.split()) // 2:]:
            problems.append("a name said twice: " + " / ".join(path))
        # No name of ours, so a screen reader gets GTK's type name.
        elif re.fullmatch(r"(Gtk|Adw)[A-Z]\w+", name):
            problems.append("a type name for a name: " + " / ".join(path))
        else:
            print("ok: %s" % describe(acc))
    for problem in problems:
        print("FAIL: " + problem)
    if problems:
        fail("%d of %d actionable widgets in “%s”" % (len(problems), checked, window.name))
    if checked == 0:
        fail("nothing actionable found in “%s”" % window.name)
    print("checked %d actionable widgets in “%s”" % (checked, window.name))


def focused_in(acc):
    """The showing descendant that has keyboard focus, or None."""
    try:
        if acc.getState().contains(pyatspi.STATE_FOCUSED):
            return acc
    except Exception:
        return None
    for child in acc:
        if child is None or not showing(child):
            continue
        found = focused_in(child)
        if found is not None:
            return found
    return None


def record_of(acc, records_list):
    """The records list's item that holds @acc (the focus), or None."""
    node = acc
    while node is not None:
        parent = node.parent
        if parent is not None and parent == records_list:
            return node
        node = parent
    return None


def record_text(item):
    """What a screen reader says for a record: its name, or its first named descendant's."""
    if item.name:
        return item.name
    for child in item:
        if child is not None and child.name:
            return child.name
    return ""


def key(xid, name):
    subprocess.run(["xdotool", "key", "--window", str(xid), "--clearmodifiers", name],
                   check=True)
    time.sleep(0.15)


def walk_keyboard(app, window, xid, rows):
    records = None
    nodes = []
    walk(window, [], nodes)
    for acc, _ in nodes:
        if acc.getRole() in (pyatspi.ROLE_LIST, pyatspi.ROLE_LIST_BOX, pyatspi.ROLE_TREE_TABLE,
                             pyatspi.ROLE_TABLE) and acc.name == "Records":
            records = acc
    if records is None:
        fail("no list named “Records” in the window")
    subprocess.run(["xdotool", "windowfocus", "--sync", str(xid)], check=True)

    # Tab, as a keyboard user would, until a record has focus.
    item = None
    for _ in range(80):
        key(xid, "Tab")
        focus = focused_in(window)
        if focus is not None:
            item = record_of(focus, records)
            if item is not None:
                break
    if item is None:
        fail("Tab never reached a record")
    print("Tab reached record: %s (focus on %s)" % (record_text(item), describe(focus)))

    # Home goes to the newest.
    key(xid, "Home")
    focus = wait_for(lambda: focused_in(window), "focus after Home", 5)
    item = record_of(focus, records)
    if item is None or records.getIndexInParent() is None:
        fail("Home left the records list (focus on %s)" % describe(focus))
    if item.getIndexInParent() != 0:
        fail("Home did not go to the first record (focus on %s, item %d)"
             % (describe(focus), item.getIndexInParent()))
    seen = [record_text(item)]
    print("Home → %s" % seen[0])

    # Down moves to the next record, each with its own text.
    for _ in range(rows - 1):
        key(xid, "Down")
        focus = wait_for(lambda: focused_in(window), "focus after Down", 5)
        item = record_of(focus, records)
        if item is None:
            fail("Down left the records list (focus on %s)" % describe(focus))
        text = record_text(item)
        if not text:
            fail("a focused record has no name")
        if text in seen:
            fail("Down did not move: still on “%s” (focus on %s)" % (text, describe(focus)))
        seen.append(text)
        print("Down → %s" % text)

    # Enter opens the focused record's details; Escape closes them.
    key(xid, "Return")
    details = wait_for(lambda: find_window(app, "Record Details"), "Record Details after Enter")
    print("Enter opened “%s”" % details.name)
    check_names(details)
    wait_for(lambda: focused_in(details) is not None or True, "focus in details")
    subprocess.run(["xdotool", "key", "--clearmodifiers", "Escape"], check=True)
    wait_for(lambda: find_window(app, "Record Details") is None, "Record Details to close")
    print("Escape closed it; %d records walked" % len(seen))


def dump(acc, depth):
    try:
        states = [pyatspi.stateToString(s) for s in acc.getState().getStates()]
    except Exception:
        states = []
    print("%s%s [%s] children=%d" % ("  " * depth, describe(acc), ",".join(states),
                                    acc.childCount))
    for child in acc:
        if child is not None:
            dump(child, depth + 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--window", required=True)
    parser.add_argument("--keyboard", action="store_true")
    parser.add_argument("--xid", type=int, default=0)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--dump", action="store_true", help="print the whole tree first")
    args = parser.parse_args()

    app = wait_for(lambda: find_app(args.pid), "the application on the accessibility bus")
    window = wait_for(lambda: find_window(app, args.window), "window “%s”" % args.window)
    if args.dump:
        dump(window, 0)
    if args.keyboard:
        walk_keyboard(app, window, args.xid, args.rows)
    else:
        check_names(window)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
