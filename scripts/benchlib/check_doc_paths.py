"""Checks that every repository path the documentation names exists.

Reads README.md and docs/*.md (or the files given), picks out every word
that starts with src/, tests/, scripts/, docs/, config/, fuzz/ or .ci/, and
prints the ones that name nothing in this checkout (a `*` in a path is a
glob and must match something). Another repository's path is written with
its name and a colon, `HttpArena:scripts/validate.sh`, and is not checked. Exits 1 when any is missing, so CI fails
when a file is moved or split and the text still names the old one.

    scripts/check-doc-paths [FILE.md ...]
"""

import argparse
import glob
import os
import re
import sys

from .common import ROOT

ROOTS = ("src", "tests", "scripts", "docs", "config", "fuzz", ".ci")
# A path: one of the roots, then name characters and slashes; it ends
# before punctuation that closes a sentence, a link or code.
PATH = re.compile(r"(?<![\w./:-])((?:%s)/[\w./*{}-]*[\w*}])" % "|".join(re.escape(r) for r in ROOTS))


def named_paths(text):
    for m in PATH.finditer(text):
        path = m.group(1)
        # `src/request/{fast,uri}.rs`-style alternatives are not expanded.
        if "{" in path:
            continue
        yield path, text.count("\n", 0, m.start()) + 1


def exists(path):
    full = os.path.join(ROOT, path)
    if "*" in path:
        return bool(glob.glob(full))
    return os.path.exists(full)


def main(argv):
    p = argparse.ArgumentParser(prog="scripts/check-doc-paths", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help="Markdown files (default README.md and docs/*.md)")
    args = p.parse_args(argv)
    files = args.files or [os.path.join(ROOT, "README.md")] + sorted(
        glob.glob(os.path.join(ROOT, "docs", "*.md")))
    missing = 0
    for name in files:
        with open(name, encoding="utf-8") as f:
            text = f.read()
        for path, line in named_paths(text):
            if not exists(path):
                print(f"{os.path.relpath(name, ROOT)}:{line}: {path} does not exist")
                missing += 1
    if missing:
        print(f"check-doc-paths: {missing} named path(s) missing", file=sys.stderr)
        sys.exit(1)
    print(f"check-doc-paths: every path named in {len(files)} file(s) exists")
    return 0

