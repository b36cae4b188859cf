#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The habits .editorconfig writes down, checked: in every C source and header of src/ and
tests/, no line over 100 characters (characters, not bytes: "…" is one), no tab for
indentation, no trailing white space, and a final newline. Prints each offending line as
FILE:LINE: what is wrong, and exits 1 when there is any. TAP output with --tap.

Lines that were over 100 characters when the check came in are listed, by file and text, in
build-aux/check-style.baseline: they pass until they are touched (a changed line is a new line),
so every new or edited line is held to the limit. --update-baseline rewrites that list from the
tree (only ever to shrink it: review its diff)."""

import os
import sys

MAX_COLUMNS = 100


def sources(top):
    for folder in ("src", "tests"):
        for root, dirs, files in os.walk(os.path.join(top, folder)):
            dirs[:] = sorted(d for d in dirs if d != "corpus")
            for name in sorted(files):
                if name.endswith((".c", ".h")):
                    yield os.path.join(root, name)


BASELINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-style.baseline")


def load_baseline():
    known = set()
    try:
        with open(BASELINE, encoding="utf-8") as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    known.add(line.rstrip("\n"))
    except FileNotFoundError:
        pass
    return known


def check(path, top, known=frozenset(), found_long=None):
    problems = []
    rel = os.path.relpath(path, top)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        problems.append(f"{rel}: no newline at the end of the file")
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_COLUMNS:
            key = f"{rel}\t{line}"
            if found_long is not None:
                found_long.append(key)
            if key not in known:
                problems.append(f"{rel}:{number}: {len(line)} characters, over {MAX_COLUMNS}")
        if line.rstrip() != line:
            problems.append(f"{rel}:{number}: white space at the end of the line")
        if line[: len(line) - len(line.lstrip())].count("\t"):
            problems.append(f"{rel}:{number}: a tab in the indentation (2 spaces, GNU style)")
    return problems


def main():
    tap = "--tap" in sys.argv
    top = os.environ.get("TOCSIN_SOURCE_ROOT") or os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    if "--update-baseline" in sys.argv:
        found = []
        for path in sources(top):
            check(path, top, frozenset(), found)
        with open(BASELINE, "w", encoding="utf-8") as f:
            f.write("# Lines over 100 characters that predate build-aux/check-style.py: FILE<TAB>TEXT.\n")
            f.write("# Wrap one, and remove it here; never add to this list.\n")
            for key in sorted(set(found)):
                f.write(key + "\n")
        print(f"{len(set(found))} lines in {BASELINE}")
        return 0
    known = load_baseline()
    problems = []
    for path in sources(top):
        problems += check(path, top, known)
    if tap:
        print("1..1")
        for p in problems:
            print("# " + p)
        print(("not ok" if problems else "ok") + " 1 - C sources follow .editorconfig")
    else:
        for p in problems:
            print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
