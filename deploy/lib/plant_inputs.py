#!/usr/bin/env python3
"""Plants identifiers through the input paths the synthetic agent uploads do not reach.

Used by `deploy/run-local.sh --check` for the identifier leak check (ARCHITECTURE invariant 2,
INTERFACE §5), together with check_leaks.py. Each input path gets identifiers of its own (a
3-character name, a valid ID-card number, a mobile, an inpatient number), so a hit names the path:

  web-filename      the multipart file name of the hospital web page's upload (/hospital/upload),
                    after activating the hospital's account (password + TOTP) and logging in
  api-headers       Content-Disposition and X-File-Name headers of an agent upload (/api/v1/upload)
  api-query         a query string on the same upload (?filename=…)
  scan-filename     the multipart file name of a death scan (/api/v1/scans)
  scan-fields       the scan's JZLSH (crosses only as a pseudonym) and extra metadata fields
                    (XM, SFZH, DH, BAH, BZ, FILENAME) that the endpoint must drop
  scan-content      the text inside the scanned PDF (scans never cross)

Every upload must be receipted as accepted (else exit 1: the check would be vacuous). Writes
PLANTED.json: per path the values to search, and the receipt ids and scan facts that must reach
the intranet; `await` then waits until the intranet's database holds all of them (it has to be
running), so the search that follows covers what really crossed. Standard library only.

    plant_inputs.py send --dmz https://127.0.0.1:8443 --ca dmz/ca/ca.pem --agent-dir AGENT_DIR \
        --activation-url URL --uscc CODE --files SYNTH_DIR/CODE/DAY --out PLANTED.json
    plant_inputs.py await --planted PLANTED.json --db intranet/data/intranet.db [--timeout 120]
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import sqlite3
import ssl
import struct
import sys
import time
import urllib.parse

PASSWORD = "Leak-Plant-2026!q"  # must not contain the account name

# One set of identifiers per input path; the names are rare 3-character names that occur nowhere
# in the synthetic world, so that a hit can only come from that path.
PATHS = ["web-filename", "api-headers", "api-query", "scan-filename", "scan-fields", "scan-content"]
NAMES = ["冼望舒", "闾丘晗", "濮阳听雪", "司马云岫", "上官星澜", "东方既白"]


def id_number(region: str, birth: str, seq: int) -> str:
    body = f"{region}{birth}{seq:03d}"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * k for c, k in zip(body, w)) % 11]


def identifiers(i: int) -> dict:
    return {
        "name": NAMES[i],
        "id": id_number("110105", f"19{61 + i:02d}0{1 + i}1{i}", 700 + 17 * i),
        "mobile": f"1{7 - i % 3}9{i}{4862031 + 97 * i:07d}",
        "mrn": f"ZYH{i}{7300516 + 31 * i:08d}",
    }


def file_name(ids: dict, ext: str) -> str:
    return f"患者{ids['name']}_身份证{ids['id']}_电话{ids['mobile']}_住院号{ids['mrn']}.{ext}"


def fail(msg: str) -> None:
    print(f"失败 (failed): {msg}", file=sys.stderr)
    sys.exit(1)


def totp(secret: bytes, step: int) -> str:
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


class Conn:
    """HTTPS to the DMZ's public listener: cookies, the page's CSRF token, same-origin headers."""

    def __init__(self, url: str, ca: str, cert=None):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.origin = u.hostname, u.port or 443, f"https://{u.netloc}"
        self.ctx = ssl.create_default_context(cafile=ca)
        if cert:
            self.ctx.load_cert_chain(*cert)
        self.cookies, self.csrf = {}, ""

    def send(self, method: str, path: str, body: bytes = b"", headers=None):
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
        c.putrequest(method, path)
        h = dict(headers or {})
        if self.cookies:
            h["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":
            h.setdefault("origin", self.origin)
        h["content-length"] = str(len(body))
        for k, v in h.items():
            c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse()
        data = r.read().decode("utf-8", "replace")
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        m = re.search(r'name="csrf" value="([^"]*)"', data)
        if m:
            self.csrf = m.group(1)
        c.close()
        return r.status, r.getheader("location") or "", data

    def form(self, path: str, fields: list):
        body = urllib.parse.urlencode([("csrf", self.csrf)] + fields).encode()
        return self.send("POST", path, body, {"content-type": "application/x-www-form-urlencoded"})


def multipart(fields: list, files: list):
    """fields: (name, value); files: (field, file name, content type, bytes). Names go out as UTF-8."""
    b = "----flumonLeakPlant5h3Kq9"
    out = bytearray()
    for k, v in fields:
        out += f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    for k, name, ty, data in files:
        out += f'--{b}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\nContent-Type: {ty}\r\n\r\n'.encode()
        out += data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return f"multipart/form-data; boundary={b}", bytes(out)


CT = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def pick(folder: str, types: list) -> str:
    for t in types:
        for ext in CT:
            p = os.path.join(folder, f"{t}.{ext}")
            if os.path.isfile(p):
                return p
    fail(f"none of {types} in {folder}")
    return ""


def web_upload(a, ids: dict) -> str:
    """Activates the hospital's web account, logs in and uploads a file under a planted name."""
    w = Conn(a.dmz, a.ca)
    path = urllib.parse.urlsplit(a.activation_url).path
    st, _, page = w.send("GET", path)
    m = re.search(r'<p class="secret">([^<]*)</p>', page)
    if st != 200 or not m:
        fail(f"activation page {path}: HTTP {st}")
    s = re.sub(r"\s", "", m.group(1)).upper()
    secret = base64.b32decode(s + "=" * (-len(s) % 8))
    step = int(time.time()) // 30
    st, loc, body = w.form(path, [("password", PASSWORD), ("password2", PASSWORD), ("code", totp(secret, step))])
    if st != 303 or "activated" not in loc:
        fail(f"activation: HTTP {st} {loc} {body[:300]}")
    w.send("GET", "/login")
    # each TOTP step is accepted once; the next one is within the ±1 window
    st, loc, body = w.form("/login", [("username", a.uscc), ("password", PASSWORD), ("code", totp(secret, step + 1))])
    if st != 303 or "login" in loc:
        fail(f"web login: HTTP {st} {loc} {body[:300]}")
    st, _, _ = w.send("GET", "/hospital/upload")
    if st != 200 or not w.csrf:
        fail(f"/hospital/upload: HTTP {st}")
    src = pick(a.files, ["summary", "death", "discharge"])
    ty, ext = os.path.basename(src).split(".", 1)
    name = file_name(ids, ext)
    ct, body = multipart([("csrf", w.csrf), ("type", ty)], [("file", name, "application/octet-stream", open(src, "rb").read())])
    st, loc, page = w.send("POST", "/hospital/upload", body, {"content-type": ct})
    m = re.match(r"/hospital/receipts/([A-Za-z0-9._-]+)$", loc)
    if st != 303 or not m:
        fail(f"web upload: HTTP {st} {loc} {page[:300]}")
    rid = m.group(1)
    st, _, page = w.send("GET", loc)
    acc = re.search(r'<div class="fig ok"><b>(\d+)</b>', page)
    if st != 200 or not acc or int(acc.group(1)) == 0:
        fail(f"web upload {rid}: nothing accepted (HTTP {st})")
    print(f"  网页上传 (web upload) {ty} as {name!r}: {rid}, {acc.group(1)} accepted")
    return rid


def api_upload(a, token: str, hdr_ids: dict, query_ids: dict) -> str:
    """An agent upload with planted file-name headers and query string (the API takes neither)."""
    c = Conn(a.dmz, a.ca, (os.path.join(a.agent_dir, "agent.pem"), os.path.join(a.agent_dir, "agent.key")))
    src = pick(a.files, ["death", "discharge", "summary"])
    ty, ext = os.path.basename(src).split(".", 1)
    hname = file_name(hdr_ids, ext)
    q = urllib.parse.quote(file_name(query_ids, ext))
    headers = {
        "authorization": f"Bearer {token}",
        "content-type": CT[ext],
        "content-disposition": f"attachment; filename*=UTF-8''{urllib.parse.quote(hname)}".encode(),
        "x-file-name": hname.encode(),
    }
    st, _, body = c.send("POST", f"/api/v1/upload/{ty}?filename={q}&name={q}", open(src, "rb").read(), headers)
    if st != 200:
        fail(f"API upload: HTTP {st} {body[:300]}")
    r = json.loads(body)
    if r.get("accepted", 0) == 0:
        fail(f"API upload: nothing accepted {body[:300]}")
    print(f"  接口上传 (API upload) {ty} with file-name headers and query: {r['receipt_id']}, {r['accepted']} accepted")
    return r["receipt_id"]


def scan_upload(a, token: str, name_ids: dict, field_ids: dict, content_ids: dict) -> dict:
    """A death scan: planted file name, JZLSH and extra fields, and identifiers in the PDF's text."""
    c = Conn(a.dmz, a.ca, (os.path.join(a.agent_dir, "agent.pem"), os.path.join(a.agent_dir, "agent.key")))
    text = (
        f"死亡记录 姓名：{content_ids['name']} 身份证号：{content_ids['id']} "
        f"联系电话：{content_ids['mobile']} 住院号：{content_ids['mrn']}"
    )
    pdf = (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n"
        b"4 0 obj << >> stream\nBT (" + text.encode() + b") Tj ET\nendstream endobj\n%%EOF\n"
    )
    jzlsh = field_ids["mrn"].replace("ZYH", "JZ")
    fields = [
        ("ZZJGDM", a.uscc),
        ("JZLSH", jzlsh),
        ("WJXH", "2"),
        ("WJZS", "3"),
        ("NRLB", "6"),
        ("XM", field_ids["name"]),
        ("SFZH", field_ids["id"]),
        ("DH", field_ids["mobile"]),
        ("BAH", field_ids["mrn"]),
        ("BZ", f"患者{field_ids['name']}家属{field_ids['mobile']}"),
        ("FILENAME", file_name(field_ids, "pdf")),
    ]
    ct, body = multipart(fields, [("file", file_name(name_ids, "pdf"), "application/pdf", pdf)])
    st, _, resp = c.send("POST", "/api/v1/scans", body, {"authorization": f"Bearer {token}", "content-type": ct})
    if st != 200:
        fail(f"scan upload: HTTP {st} {resp[:300]}")
    r = json.loads(resp)
    if r.get("accepted") != 1:
        fail(f"scan upload not accepted: {resp[:300]}")
    print(f"  扫描件 (death scan) with planted file name, fields and content: {r['receipt_id']}, accepted")
    return {"org": a.uscc, "wjxh": 2, "wjzs": 3, "nrlb": 6, "bytes": len(pdf), "jzlsh": jzlsh}


def send(a) -> None:
    ids = {p: identifiers(i) for i, p in enumerate(PATHS)}
    token = open(os.path.join(a.agent_dir, "token"), encoding="utf-8").read().strip()
    receipts = [web_upload(a, ids["web-filename"]), api_upload(a, token, ids["api-headers"], ids["api-query"])]
    scan = scan_upload(a, token, ids["scan-filename"], ids["scan-fields"], ids["scan-content"])
    values = {p: sorted(v.values()) for p, v in ids.items()}
    values["scan-fields"].append(scan["jzlsh"])
    out = {"paths": values, "receipts": receipts, "scans": [scan]}
    with open(a.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, indent=1)


def wait(a) -> None:
    p = json.load(open(a.planted, encoding="utf-8"))
    deadline = time.time() + a.timeout
    missing = None
    while time.time() < deadline:
        try:
            db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True, timeout=10)
            missing = [r for r in p["receipts"] if not db.execute("SELECT 1 FROM receipts WHERE receipt_id = ?", (r,)).fetchone()]
            for s in p["scans"]:
                q = "SELECT 1 FROM scans WHERE org = ? AND wjxh = ? AND wjzs = ? AND nrlb = ? AND bytes = ?"
                if not db.execute(q, (s["org"], s["wjxh"], s["wjzs"], s["nrlb"], s["bytes"])).fetchone():
                    missing.append(f"scan {s['org']} {s['wjxh']}/{s['wjzs']}")
            db.close()
        except sqlite3.Error as e:
            missing = [f"database: {e}"]
        if not missing:
            print(f"  植入的上传已进入内网 (planted uploads reached the intranet): {len(p['receipts'])} receipts, "
                  f"{len(p['scans'])} scan")
            return
        time.sleep(2)
    fail(f"planted uploads did not reach the intranet in {a.timeout} s: {missing}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--dmz", required=True)
    s.add_argument("--ca", required=True)
    s.add_argument("--agent-dir", required=True)
    s.add_argument("--activation-url", required=True)
    s.add_argument("--uscc", required=True)
    s.add_argument("--files", required=True, help="the hospital's synthetic upload folder of the day")
    s.add_argument("--out", required=True)
    w = sub.add_parser("await")
    w.add_argument("--planted", required=True)
    w.add_argument("--db", required=True)
    w.add_argument("--timeout", type=int, default=120)
    a = ap.parse_args()
    send(a) if a.cmd == "send" else wait(a)


if __name__ == "__main__":
    main()
