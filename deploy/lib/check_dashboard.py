#!/usr/bin/env python3
"""Checks, the way an analyst would, that uploaded cases are on the intranet's dashboard.

Used by `deploy/run-local.sh --check` (and CI): activates a fresh analyst account through the
JSON API (password + TOTP, as docs/API.md describes), logs in, reads this week's national case
count from `GET /api/v1/indicators`, then opens the dashboard page `/overview` with the same
session cookie and checks that its headline figure "本周流感病例数" shows the same number, and
that it is not zero. Standard library only.

    check_dashboard.py --url https://127.0.0.1:9443 --ca tls/server.pem --name check \
        --code ACTIVATION_CODE --to YYYY-MM-DD

Prints one line with the figure; exits 1 with a message on any mismatch.
"""

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import re
import ssl
import struct
import sys
import time
import urllib.error
import urllib.request

PASSWORD = "Dash-Verify-2026!"  # must not contain the account name


def totp(secret: bytes, step: int) -> str:
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    n = (struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{n:06d}"


def decode_secret(s: str) -> bytes:
    s = s.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


class Client:
    def __init__(self, url: str, ca: str):
        self.url = url.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.token = None

    def call(self, method: str, path: str, body=None, cookie=False):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if self.token and cookie:
            req.add_header("cookie", f"flumon_session={self.token}")
        elif self.token:
            req.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")


def fail(msg: str) -> None:
    print(f"失败 (failed): {msg}", file=sys.stderr)
    sys.exit(1)


def national_cases(c: "Client", frm: dt.date, to: dt.date) -> int:
    st, body = c.call("GET", f"/api/v1/indicators?scope=000000&from={frm}&to={to}&by=season")
    if st != 200:
        fail(f"/api/v1/indicators: HTTP {st} {body[:300]}")
    n = json.loads(body)["total"]["cases"]["total"]
    if not isinstance(n, int):
        fail(f"national case count is not a number: {n!r}")
    return n


def overview_cases(c: "Client", to: dt.date) -> str:
    st, page = c.call("GET", f"/overview?scope=000000&to={to}", cookie=True)
    if st != 200:
        fail(f"/overview: HTTP {st}")
    m = re.search(r'class="kpi kpi-cases".*?<div class="v">([^<]*)</div>', page, re.S)
    if not m:
        fail("the overview page has no '本周流感病例数' figure")
    return html.unescape(m.group(1)).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--code", required=True, help="the one-time activation code of the account")
    ap.add_argument("--to", required=True, help="last day of the week to check (YYYY-MM-DD)")
    a = ap.parse_args()
    c = Client(a.url, a.ca)

    st, body = c.call("POST", "/api/v1/auth/activate", {"name": a.name, "code": a.code, "password": PASSWORD})
    if st != 200:
        fail(f"activate: HTTP {st} {body[:300]}")
    secret = decode_secret(json.loads(body)["totp_secret"])
    step = int(time.time()) // 30
    st, body = c.call("POST", "/api/v1/auth/confirm", {"name": a.name, "code": a.code, "totp": totp(secret, step)})
    if st != 200:
        fail(f"confirm: HTTP {st} {body[:300]}")
    # each TOTP step is accepted once; the next step is within the ±1 window
    st, body = c.call("POST", "/api/v1/auth/login", {"name": a.name, "password": PASSWORD, "totp": totp(secret, step + 1)})
    if st != 200:
        fail(f"login: HTTP {st} {body[:300]}")
    c.token = json.loads(body)["token"]

    to = dt.date.fromisoformat(a.to)
    frm = to - dt.timedelta(days=6)
    # Batches may still be arriving: read the API before and after the page and compare only
    # when the two API reads agree.
    for attempt in range(20):
        before = national_cases(c, frm, to)
        shown = overview_cases(c, to)
        after = national_cases(c, frm, to)
        if before == after:
            break
        time.sleep(3)
    else:
        fail("the national figure kept changing for a minute; ingest did not settle")
    digits = re.sub(r"[,\s]", "", shown)
    if not digits.isdigit():
        fail(f"the overview shows {shown!r}, not a number")
    if int(digits) != after:
        fail(f"the overview shows {shown} cases this week, the API {after}")
    if after <= 0:
        fail("no cases this week on the dashboard")
    api_cases = after
    print(f"仪表盘本周病例 (dashboard, cases {frm}..{to}): {shown} = API {api_cases}")


if __name__ == "__main__":
    main()
