#!/usr/bin/env python3
"""Searches what crossed the gate, and every log, for the identifiers sent into the system.

Used by `deploy/run-local.sh --check` (ARCHITECTURE invariant 2, INTERFACE §5). The values that
must never reach the intranet, by input path:

  record fields   every synthetic upload (CSV in UTF-8, UTF-8 with BOM or GB18030, JSON and XLSX,
                  as manifest.json lists them): XM and the HQMS column 主治医师 (names of 3 or more
                  characters), SFZH, DH, XZZ, MZZYH, BAH (10 or more characters), and the raw JZLSH
                  and JLID (which cross only as keyed pseudonyms)
  free text       the identifiers `flumon-synth --plant-ids` planted in every free-text field
                  (summary RYQK, ZLGC, CYQK, CYYZ; death RYQK, ZLGC), as manifest.json lists them,
                  except a relative's name (rule `none`: no clause of §5 scrubs it, it crosses)
  --planted FILE  what deploy/lib/plant_inputs.py sent through the other paths (web upload file
                  name, file-name headers and query of the agent API, scan file name, metadata
                  and content), each path with its own values

Values that legitimately cross are taken out of the search: the report number BGDH (the
synthetic lab records use it as their JLID too) and the planted relatives' names. Shorter values
are left out because they occur by chance in hex pseudonyms and other data. Each value is
searched as written and, where different, URL-encoded, in every byte of every file under each
--search path (the intranet's SQLite database and WAL, its journal, the receiver's spool with
done/ and rejected/, the quarantine, the sender's and receiver's state folders and journals, the
decrypted batches of flumon-batch-dump, every log file). Standard library only.

    check_leaks.py --uploads SYNTH_DIR [--planted PLANTED.json] --search PATH [--search PATH ...]
        [--batches DUMP_DIR]

--batches names the decrypted batch dump (also searched): it must hold records and scrub
markers, or the check fails as vacuous. Prints, per input path, how many values were searched;
exits 1 listing the first hits.
"""

import argparse
import csv
import io
import json
import os
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile

FIELDS = {"XM": 3, "SFZH": 15, "DH": 11, "XZZ": 6, "MZZYH": 8, "BAH": 10, "JZLSH": 8, "JLID": 8, "主治医师": 3}

# Fields that cross as they are (INTERFACE §5 "everything else of §3"); a value of one of them is
# not searched even when a JLID has the same value (the synthetic lab records use the report
# number BGDH as their JLID).
CROSSING = ("BGDH",)

# The shortest value searched by kind of planted free-text identifier (as FIELDS).
PLANTED_MIN = {"own_name": 3, "own_id": 15, "own_phone": 11, "other_id": 15, "other_mobile": 11, "label_value": 6}

# The free-text fields (type T) of INTERFACE §3.3 and §3.4.
FREE_TEXT = {"summary": ("RYQK", "ZLGC", "CYQK", "CYYZ"), "death": ("RYQK", "ZLGC")}

ENCODINGS = {None: "utf-8-sig", "utf-8": "utf-8", "utf-8-bom": "utf-8-sig", "gb18030": "gb18030"}

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def fail(msg: str) -> None:
    print(f"失败 (failed): {msg}", file=sys.stderr)
    sys.exit(1)


def col_index(ref: str) -> int:
    n = 0
    for ch in re.match(r"[A-Z]+", ref).group(0):
        n = n * 26 + ord(ch) - 64
    return n - 1


def xlsx_rows(path: str):
    """The first sheet's rows as lists of strings (shared and inline strings, numbers as written)."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        shared = []
        if "xl/sharedStrings.xml" in names:
            for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(f"{NS}si"):
                shared.append("".join(t.text or "" for t in si.iter(f"{NS}t")))
        sheet = "xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in names else sorted(
            n for n in names if n.startswith("xl/worksheets/sheet"))[0]
        for row in ET.fromstring(z.read(sheet)).iter(f"{NS}row"):
            out = []
            for c in row.iter(f"{NS}c"):
                i = col_index(c.get("r", "A1"))
                while len(out) <= i:
                    out.append("")
                t, v = c.get("t"), c.find(f"{NS}v")
                if t == "s" and v is not None:
                    out[i] = shared[int(v.text)]
                elif t == "inlineStr":
                    out[i] = "".join(x.text or "" for x in c.iter(f"{NS}t"))
                elif v is not None:
                    out[i] = v.text or ""
            yield out


def records(path: str, f: dict):
    """The records of one synthetic upload as dicts of field code → text."""
    fmt = f.get("format")
    if fmt == "json":
        with open(path, encoding="utf-8-sig") as fh:
            for r in json.load(fh)["records"]:
                yield {k: "" if v is None else str(v) for k, v in r.items()}
    elif fmt == "xlsx":
        rows = xlsx_rows(path)
        header = next(rows, [])
        for r in rows:
            yield dict(zip(header, r))
    elif fmt == "csv":
        with open(path, "rb") as fh:
            text = fh.read().decode(ENCODINGS[f.get("encoding")])
        yield from csv.DictReader(io.StringIO(text, newline=""))
    else:
        fail(f"{path}: unknown format {fmt!r}")


def from_uploads(root: str):
    """(record-field values, free-text values, values that cross, skipped, files, rows, planted
    values searched per free-text field, live rows per type)."""
    m = json.load(open(os.path.join(root, "manifest.json"), encoding="utf-8"))
    fields, free, crossing, skipped, rows = set(), set(), set(), 0, 0
    per_field, live = {(t, f): 0 for t, fs in FREE_TEXT.items() for f in fs}, {}
    for f in m["files"]:
        live[f["type"]] = live.get(f["type"], 0) + f["rows"] - f.get("deletes", 0)
        if f.get("header") != "code":
            fail(f"{f['path']}: header mode {f.get('header')!r}; only field-code headers are read")
        for row in records(os.path.join(root, f["path"]), f):
            rows += 1
            crossing.update((row.get(c) or "").strip() for c in CROSSING)
            for field, shortest in FIELDS.items():
                v = (row.get(field) or "").strip()
                if len(v) >= shortest:
                    fields.add(v)
        for p in f.get("planted_ids") or []:
            v = p["value"].strip()
            if p["rule"] == "none":
                crossing.add(v)  # a relative's name: nothing scrubs it (INTERFACE §5)
            elif len(v) >= PLANTED_MIN.get(p["kind"], 99):
                free.add(v)
                per_field[(f["type"], p["field"])] = per_field.get((f["type"], p["field"]), 0) + 1
                digits = re.sub(r"\D", "", v)
                if p["kind"] == "other_mobile" and digits != v:
                    free.add(digits[-11:])  # the number itself, however it was written
            else:
                skipped += 1
    return fields, free, crossing, skipped, len(m["files"]), rows, per_field, live


def files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
        for dirpath, _, names in os.walk(p):
            for n in names:
                yield os.path.join(dirpath, n)


def check_batches(dump: str) -> str:
    """The decrypted batches must hold records and scrubbed free text, or the search is vacuous."""
    recs, markers = 0, 0
    for path in files([dump]):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                recs += line.startswith('{"Record"')
                markers += line.count("［证件号］") + line.count("［电话］") + line.count("［姓名］")
    if recs == 0 or markers == 0:
        fail(f"the decrypted batches under {dump} hold {recs} records and {markers} scrub markers: nothing to test")
    return f"{recs} records, {markers} scrub markers"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", required=True)
    ap.add_argument("--planted")
    ap.add_argument("--search", action="append", required=True)
    ap.add_argument("--batches")
    a = ap.parse_args()
    fields, free, crossing, skipped, nfiles, nrows, per_field, live = from_uploads(a.uploads)
    paths = {"record fields": fields - crossing, "free text": free - crossing}
    if a.planted:
        for p, vals in json.load(open(a.planted, encoding="utf-8"))["paths"].items():
            paths[p] = set(vals) - crossing
    if len(paths["record fields"]) < 100:
        fail(f"only {len(paths['record fields'])} identifiers found under {a.uploads}: nothing to test")
    if len(paths["free text"]) < 20:
        fail(f"only {len(paths['free text'])} planted free-text identifiers (flumon-synth --plant-ids): nothing to test")
    for t in FREE_TEXT:
        if live.get(t, 0) > 0 and not any(n for (ty, _), n in per_field.items() if ty == t):
            fail(f"{live[t]} {t} records but no identifier planted in their free text")
    search = list(a.search) + ([a.batches] if a.batches else [])
    batches = check_batches(a.batches) if a.batches else "not searched"

    needles = {}  # bytes → input paths
    for p, vals in paths.items():
        for v in vals:
            for form in {v, urllib.parse.quote(v)}:
                needles.setdefault(form.encode(), set()).add(p)
    hits, total, nread = [], 0, 0
    for path in files(search):
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        nread += 1
        total += len(data)
        for v, ps in needles.items():
            if v in data:
                hits.append((path, v.decode(), sorted(ps)))
    print(f"标识符检查 (identifier leak check): {nfiles} upload files, {nrows} rows; decrypted batches: {batches}")
    for p, vals in paths.items():
        print(f"  {p}: {len(vals)} values searched")
        if p == "free text":
            by = ", ".join(f"{t}.{f} {n}" for (t, f), n in sorted(per_field.items()))
            print(f"    planted per field (as written, before removing duplicates): {by}")
    print(f"  not searched: {len(crossing)} values that cross, {skipped} planted values too short")
    if hits:
        for path, v, ps in hits[:20]:
            print(f"泄漏 (leak): {v!r} ({', '.join(ps)}) in {path}", file=sys.stderr)
        fail(f"{len(hits)} identifier hits")
    print(f"  {sum(len(v) for v in paths.values())} values, {nread} files, {total / 1048576:.1f} MiB: 0 hits")


if __name__ == "__main__":
    main()
