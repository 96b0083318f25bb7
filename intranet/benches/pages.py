#!/usr/bin/env python3
"""Page timings of the intranet web against a loaded database (issue 6: every page's server
time under 300 ms at 10 million cases).

    # 1. load a database and keep it (prints "kept: PATH")
    FLUMON_BENCH_KEEP=1 FLUMON_BENCH_DIR=/work/bench cargo bench -p flumon-intranet --bench ingest
    # 2. serve it and time every page
    python3 intranet/benches/pages.py --bin target/release/flumon-intranet --dmz-bin target/release/flumon-dmz \
        --db PATH --to 2027-03-01

Makes a throwaway intranet config (`flumon-intranet init`) pointing at the database, creates a
national and a provincial analyst and a secadmin, activates them through the JSON API (password
+ TOTP), starts `flumon-intranet serve`, and requests every analyst page (overview, time series,
MEM, map at national, province and city level, drug reserve, reporting quality, each export) and
the secadmin pages R times over one kept-alive TLS connection per account, after one warm-up
request each. Prints p50 / p95 / max per page in ms: time from sending the request to the last
byte of the answer, on loopback (the server's time plus a loopback round trip). Standard library only.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

PASSWORD = "Bench-Pages-2026!"


# TOTP (RFC 6238) and secret decoding: the same helpers the run-local check uses
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "lib"))
from check_dashboard import decode_secret, totp  # noqa: E402


class Conn:
    def __init__(self, port: int, ca: str):
        ctx = ssl.create_default_context(cafile=ca)
        self.c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
        self.token = None

    def req(self, method, path, body=None):
        h = {}
        if body is not None:
            body = json.dumps(body).encode()
            h["content-type"] = "application/json"
        if self.token:
            h["cookie"] = f"flumon_session={self.token}"
        t0 = time.perf_counter()
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        return r.status, data, (time.perf_counter() - t0) * 1000.0

    def login(self, name, code):
        st, b, _ = self.req("POST", "/api/v1/auth/activate", {"name": name, "code": code, "password": PASSWORD})
        assert st == 200, (st, b[:300])
        secret = decode_secret(json.loads(b)["totp_secret"])
        step = int(time.time()) // 30
        st, b, _ = self.req("POST", "/api/v1/auth/confirm", {"name": name, "code": code, "totp": totp(secret, step)})
        assert st == 200, (st, b[:300])
        st, b, _ = self.req("POST", "/api/v1/auth/login",
                            {"name": name, "password": PASSWORD, "totp": totp(secret, step + 1)})
        assert st == 200, (st, b[:300])
        self.token = json.loads(b)["token"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="flumon-intranet binary (release)")
    ap.add_argument("--dmz-bin", required=True, help="flumon-dmz binary (for its init: link keys)")
    ap.add_argument("--db", required=True, help="the SQLite file the ingest bench kept")
    ap.add_argument("--to", required=True, help="last day shown (YYYY-MM-DD), the data's last day")
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="flumon-pages-")
    proc = None
    try:
        d = os.path.join(work, "intranet")
        # serve needs the link keys; a throwaway DMZ configuration provides them
        subprocess.run([a.dmz_bin, "init", os.path.join(work, "dmz")], check=True, capture_output=True)
        subprocess.run([a.bin, "init", d, "--dmz-dir", os.path.join(work, "dmz")], check=True, capture_output=True)
        port = free_port()
        cfg_path = os.path.join(d, "intranet.toml")
        cfg = open(cfg_path).read()
        cfg = re.sub(r'(?m)^database_url = .*$', f'database_url = "sqlite://{os.path.abspath(a.db)}"', cfg)
        cfg = re.sub(r'(?m)^listen = .*$', f'listen = "127.0.0.1:{port}"', cfg)
        open(cfg_path, "w").write(cfg)
        # the province with most hospitals in the database decides the provincial account
        import sqlite3
        con = sqlite3.connect(a.db)
        prov, city = None, None
        try:
            row = con.execute("SELECT substr(region,1,2), COUNT(*) n FROM hospitals GROUP BY 1 ORDER BY n DESC LIMIT 1").fetchone()
            prov = row[0] + "0000"
            row = con.execute("SELECT substr(region,1,4), COUNT(*) n FROM hospitals WHERE substr(region,1,2)=? "
                              "GROUP BY 1 ORDER BY n DESC LIMIT 1", (row[0],)).fetchone()
            city = row[0] + "00"
        finally:
            con.close()
        codes = {}
        tag = f"{os.getpid() % 100000}"  # the database keeps the accounts of earlier runs
        for name, role, scope in [("nat", "analyst", "000000"), ("prov", "analyst", prov), ("sec", "secadmin", None)]:
            args = [a.bin, "admin", "create-user", "--config", cfg_path, "--name", f"{name}{tag}", "--role", role]
            if scope:
                args += ["--scope", scope]
            out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip().splitlines()
            codes[name] = out[-1].split()[-1]
        log = open(os.path.join(work, "serve.log"), "w")
        proc = subprocess.Popen([a.bin, "serve", "--config", cfg_path], stdout=log, stderr=log)
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        ca = os.path.join(d, "tls", "server.pem")
        to = a.to
        frm28 = f"&to={to}"
        pages = {
            "nat": [
                f"/overview?scope=000000{frm28}",
                f"/series?scope=000000{frm28}",
                f"/series?scope=000000{frm28}&by=day",
                f"/mem?scope=000000{frm28}",
                f"/map?scope=000000{frm28}",
                f"/map?scope={prov}{frm28}",
                f"/map?scope={city}{frm28}",
                f"/drugs?scope=000000&date={to}",
                f"/quality?scope=000000&date={to}",
                f"/overview?scope=000000{frm28}&format=xlsx",
                f"/map?scope=000000{frm28}&format=csv",
            ],
            "prov": [
                f"/overview?scope={prov}{frm28}",
                f"/series?scope={prov}{frm28}",
                f"/mem?scope={prov}{frm28}",
                f"/map?scope={prov}{frm28}",
                f"/drugs?scope={prov}&date={to}",
                f"/quality?scope={prov}&date={to}",
            ],
            "sec": ["/security", "/security/events"],
        }
        print(f"database: {a.db} ({os.path.getsize(a.db) / 1048576:.0f} MiB), to {to}, province {prov}, city {city}, "
              f"runs {a.runs}")
        print(f"{'account':<5} {'page':<52} {'status':>6} {'KiB':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        worst = 0.0
        for who, paths in pages.items():
            c = Conn(port, ca)
            c.login(f"{who}{tag}", codes[who])
            for p in paths:
                st, body, _ = c.req("GET", p)  # warm-up
                ts = []
                for _ in range(a.runs):
                    st, body, ms = c.req("GET", p)
                    ts.append(ms)
                worst = max(worst, pct(ts, 0.95))
                print(f"{who:<5} {p:<52} {st:>6} {len(body) / 1024:>7.1f} {pct(ts, 0.5):>8.1f} {pct(ts, 0.95):>8.1f} "
                      f"{max(ts):>8.1f}")
                if st != 200:
                    print(f"  ! HTTP {st}: {body[:200]!r}", file=sys.stderr)
        print(f"worst p95: {worst:.1f} ms (goal: under 300 ms)")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
