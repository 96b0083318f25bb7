#!/usr/bin/env python3
"""Searches what crossed the gate, and every log, for the identifiers of the uploaded files.

Used by `deploy/run-local.sh --check` (ARCHITECTURE invariant 2, INTERFACE §5): reads every
synthetic upload (CSV, the INTERFACE layout with field codes as headers) and collects the values
that must never reach the intranet — XM (names of 3 or more characters), SFZH, DH, XZZ, MZZYH,
BAH (10 or more characters), and the raw JZLSH and JLID (which cross only as keyed pseudonyms) —
then searches every byte of every file under the intranet's folder (its SQLite database and WAL,
journals, spool) and the given log files for each of them, as UTF-8. Shorter values are left out
because they occur by chance in hex pseudonyms and other data. Standard library only.

    check_leaks.py --uploads SYNTH_DIR --search INTRANET_DIR [--search LOG ...]

Prints how many values were searched in how many bytes; exits 1 listing the first hits.
"""

import argparse
import csv
import os
import sys

FIELDS = {"XM": 3, "SFZH": 15, "DH": 11, "XZZ": 6, "MZZYH": 8, "BAH": 10, "JZLSH": 8, "JLID": 8}


# Fields that cross as they are (INTERFACE §5 "everything else of §3"); a value of one of them is
# not searched even when a JLID has the same value (the synthetic lab records use the report
# number BGDH as their JLID).
CROSSING = ("BGDH",)


def identifiers(root: str) -> set:
    out, crossing = set(), set()
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".csv"):
                continue
            with open(os.path.join(dirpath, f), newline="", encoding="utf-8", errors="replace") as fh:
                for row in csv.DictReader(fh):
                    crossing.update((row.get(c) or "").strip() for c in CROSSING)
                    for field, shortest in FIELDS.items():
                        v = (row.get(field) or "").strip()
                        if len(v) >= shortest:
                            out.add(v)
    return out - crossing


def files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
        for dirpath, _, names in os.walk(p):
            for n in names:
                yield os.path.join(dirpath, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", required=True)
    ap.add_argument("--search", action="append", required=True)
    a = ap.parse_args()
    ids = identifiers(a.uploads)
    if len(ids) < 100:
        print(f"失败 (failed): only {len(ids)} identifiers found under {a.uploads}: nothing to test", file=sys.stderr)
        sys.exit(1)
    needles = [v.encode() for v in ids]
    hits, total, nfiles = [], 0, 0
    for path in files(a.search):
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        nfiles += 1
        total += len(data)
        for v in needles:
            if v in data:
                hits.append((path, v.decode()))
    if hits:
        for path, v in hits[:20]:
            print(f"泄漏 (leak): {v!r} in {path}", file=sys.stderr)
        print(f"失败 (failed): {len(hits)} identifier hits", file=sys.stderr)
        sys.exit(1)
    print(f"标识符检查 (identifier leak check): {len(ids)} identifiers, {nfiles} files, {total / 1048576:.1f} MiB: 0 hits")


if __name__ == "__main__":
    main()
