#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The habits .editorconfig writes down, checked: in every C source and header of src/ and
tests/, no line over 100 characters (characters, not bytes: "…" is one), no tab for
indentation, no trailing white space, and a final newline. Prints each offending line as
FILE:LINE: what is wrong, and exits 1 when there is any. TAP output with --tap."""

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


def check(path, top):
    problems = []
    rel = os.path.relpath(path, top)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        problems.append(f"{rel}: no newline at the end of the file")
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_COLUMNS:
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
    problems = []
    for path in sources(top):
        problems += check(path, top)
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
