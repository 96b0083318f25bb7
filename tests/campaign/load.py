#!/usr/bin/env python3
"""flumon load run: the whole system, each program its own process (as tests/campaign/campaign.py
starts it, with generated keys and the deployment's default batching: DMZ batches of at most 10 s,
intranet spool polled every 5 s, link at 800 Mbit/s), under N hospitals whose agents upload
continuously while A analysts read the dashboards. No faults are injected.

    N agents ─HTTPS─▶ flumon-dmz ─outbox─▶ transfer send ═UDP═▶ recv ─spool─▶ flumon-intranet ◀─HTTPS─ A analysts
    every 10 s: VmRSS and utime+stime of each program (/proc/PID/status, /proc/PID/stat)
    every 0.5 s: new rows of the intranet's `receipts` and `batches` tables (SQLite, read-only)

* Uploads: `flumon-synth` data, --uploads daily folders per hospital, each the trailing 7 days; every
  hospital's agent runs `flumon-agent run --once --rerun` on one day after the other, with no pause,
  wrapping around to the first day (then the DMZ's dedupe stops unchanged records: the intranet
  receives only the receipts of those uploads). All agents connect from 127.0.0.1, so the DMZ's
  per-address rate limit is set to N times its default (deployed, each hospital has its own address);
  each hospital's per-token limit keeps its default.
* Analysts: account 1 national (000000), the others the provinces with most hospitals; activated and
  logged in through the JSON API (password + TOTP, deploy/lib/check_dashboard.py), then in a loop the
  dashboard pages of intranet/src/web (/overview, /series, /map, /drugs, /quality, /mem) with the
  session cookie and the data API (/api/v1/indicators, timeseries, regions, quality, drugs, nowcast,
  mem) with the bearer token, each timed, --think-secs between requests.
* Receipt → visible: the intranet applies a batch in one transaction (receipt summary, records,
  rollups, `batches` row), and every dashboard page and API call reads those rollups, so a receipt is
  on the dashboard from the moment its row is in `receipts`. The latency is the time this script
  first sees the row minus the DMZ's answer time the row carries (whole seconds, CST): resolution
  about 1 s.
* Records/s: DMZ = rows accepted by the receipts (`flumon-agent receipts`) answered in the load
  window ÷ window; intranet = entries of the batches ingested in the window ÷ window.
* CPU per record: DMZ node (flumon-dmz + transfer send) CPU seconds ÷ rows received by the DMZ;
  intranet side (transfer recv + flumon-intranet) CPU seconds ÷ entries ingested, over the whole run
  including the drain; the intranet's figure also contains serving the analysts (an upper bound).
  From these and ARCHITECTURE.md's "Scale to plan for", the national-scale arithmetic.
* The ERROR lines each program logged (retried failures, e.g. an ingest pass that met a locked
  database), counted by message.

The run fails (exit 1) when a program exited, an upload failed other than transiently (HTTP 429/503,
network), a dashboard request failed other than 429, a receipt an agent holds never reached the
intranet, or nothing is visible on the dashboard (no receipt, or national cases = 0).

Usage: tests/campaign/load.py [--minutes M] [--hospitals N] [--analysts A] [--bin-dir DIR | --no-build]
                              [--uploads U] [--scale S] [--report FILE] [--work DIR]
Standard library only; Linux (/proc).
"""

import argparse
import calendar
import datetime
import json
import math
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from campaign import ROOT, Campaign, log, set_toml

sys.path.insert(0, str(ROOT / "deploy" / "lib"))
import check_dashboard as dash  # noqa: E402

CST = 8 * 3600
TICK = os.sysconf("SC_CLK_TCK")
WEB_PAGES = ["/overview", "/series", "/map", "/drugs", "/quality", "/mem"]
API_CALLS = ["indicators", "timeseries", "regions", "quality", "drugs", "nowcast", "mem"]
TRANSIENT = re.compile(r"HTTP (429|503)|网络|network|connect|timed out|timeout", re.I)

# ARCHITECTURE.md, "Scale to plan for", and the assumptions the arithmetic adds (printed with it).
NATIONAL = {
    "hospitals": 15_000,
    "cases_per_day": 1_000_000,
    "records_per_case": 1 + 5 + 10,
    "dmz_records_per_day": 110_000_000,
    "night_hours": 8,  # assumption: "mostly at night"
    "burst": 3.0,  # assumption: "bursts well above" the night average
    "resend_days": 7,  # each record is sent on 7 days; unchanged resends stop at the DMZ's dedupe
    "largest_province_share": 0.09,  # assumption: Guangdong, ~9 % of the hospitals
    "utilisation": 0.7,  # plan cores to 70 %
    "season_peak_days": 60,  # assumption: a season stores about 60 peak days of records
}


def pct(xs, q):
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{nd}f}"


def proc_sample(pid):
    """(VmRSS MiB, utime+stime s) of a live process, None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    f = stat[stat.rindex(")") + 2:].split()
    return (int(m.group(1)) / 1024 if m else 0.0), (int(f[11]) + int(f[12])) / TICK


def cst_epoch(text):
    """Seconds since the epoch of a CST wall time 'YYYY-MM-DD HH:MM:SS'."""
    t = datetime.datetime.strptime(text.strip()[:19], "%Y-%m-%d %H:%M:%S")
    return calendar.timegm(t.timetuple()) - CST


class Load(Campaign):
    def __init__(self, a):
        super().__init__(a)
        self.stop_analysts = threading.Event()
        self.stop_watch = threading.Event()
        self.samples = []  # (t, {name: (pid, rss MiB, cpu s)}, agents' summed RSS MiB)
        self.seen = {}  # receipt_id → (seen at, DMZ answer time (epoch), accepted, received)
        self.batches = []  # (seen at, entries ingested)
        self.requests = []  # (page, seconds, HTTP status)
        self.analyst_problems = []
        self.runs = []  # (hospital, start, end, rc, cpu s, max RSS MiB, transient)
        self.run_errors = []
        self.lock = threading.Lock()

    # ---------------------------------------------------------------- setup
    def prepare(self):
        a, W = self.a, self.W
        self.configure()
        self.notes.clear()  # the campaign's note that its disk-full fault is off
        # The deployment's defaults, not the campaign's short intervals: the latency is the one a
        # deployment sees.
        set_toml(W / "dmz" / "dmz.toml", "max_age_secs", "10", "batch")
        set_toml(W / "transfer" / "send.toml", "rate_mbit", "800", "diode")
        set_toml(W / "intranet" / "intranet.toml", "poll_seconds", "5", "ingest")
        # Every agent here connects from 127.0.0.1; deployed, each hospital has its own address, so the
        # per-address bucket is the default one's times N (the per-token bucket of each hospital stays).
        set_toml(W / "dmz" / "dmz.toml", "per_addr_per_minute", str(1200 * a.hospitals), "limits")
        set_toml(W / "dmz" / "dmz.toml", "per_addr_burst", str(240 * a.hospitals), "limits")
        self.generate()
        hosp = json.loads((W / "synth" / "hospitals.json").read_text())
        count = {}
        for h in hosp:
            p = h["region"][:2] + "0000"
            count[p] = count.get(p, 0) + 1
        provinces = sorted(count, key=lambda p: (-count[p], p)) or ["000000"]
        self.analysts = []
        for i in range(a.analysts):
            scope = "000000" if i == 0 else provinces[(i - 1) % len(provinces)]
            name = f"load-analyst-{i + 1}"
            out = self.run(self.bin("flumon-intranet"), "admin", "create-user", "--config",
                           W / "intranet/intranet.toml", "--name", name, "--role", "analyst", "--scope", scope).stdout
            self.analysts.append((name, scope, out.strip().split()[-1]))
        self.start_services()
        self.enrol()

    # ---------------------------------------------------------------- agents
    def agent_once(self, code, day):
        ag = self.agents[code]
        self.point_agent(code, day)
        t0 = time.time()
        p = subprocess.Popen([self.bin("flumon-agent"), "run", "--config", str(ag["dir"] / "agent.toml"),
                              "--once", "--rerun", "--attempts", "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with self.agent_lock:
            self.agent_procs[code] = p
        out = p.stdout.read()
        _, st, ru = os.wait4(p.pid, 0)
        p.returncode = rc = os.waitstatus_to_exitcode(st)
        p.stdout.close()
        with self.agent_lock:
            self.agent_procs.pop(code, None)
        with open(self.W / "logs" / f"agent-{code}.log", "ab") as lf:
            lf.write(f"\n==== {day} {time.ctime(t0)} exit {rc}\n".encode() + out)
        text = "\n".join(x for x in out.decode("utf-8", "replace").splitlines() if not x.startswith('{"seq"'))
        transient = rc != 0 and bool(TRANSIENT.search(text))
        with self.lock:
            self.runs.append((code, t0, time.time(), rc, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, transient))
            if rc != 0 and not transient:
                self.run_errors.append(f"{code} {day}: exit {rc}: {text.strip()[-300:]}")
        ag["runs"] += 1
        if rc != 0:
            ag["fail"] += 1
        return rc

    def uploader(self, code):
        days = self.agents[code]["days"]
        i, last = 0, 0
        while not self.stop_uploads.is_set():
            # The agent names a --rerun run by the second it starts in: a second run in the same second
            # would find that run already prepared and send nothing.
            while int(time.time()) == last:
                time.sleep(0.05)
            last = int(time.time())
            self.agent_once(code, days[i % len(days)])
            i += 1

    # ---------------------------------------------------------------- measurements
    def sample(self):
        row = {}
        for name, s in self.svc.items():
            p = s.proc
            v = proc_sample(p.pid) if p is not None else None
            if v:
                row[name] = (p.pid, v[0], v[1])
        with self.agent_lock:
            pids = [p.pid for p in self.agent_procs.values()]
        agents = sum((proc_sample(pid) or (0.0, 0.0))[0] for pid in pids)
        with self.lock:
            self.samples.append((time.time(), row, agents))

    def sampler(self):
        while not self.stop_watch.wait(self.a.sample_secs):
            self.sample()

    def watcher(self):
        """Notes when each receipt and batch appears in the intranet's database."""
        db = self.W / "intranet" / "data" / "intranet.db"
        last_r = last_b = 0
        con = None
        while not self.stop_watch.wait(0.5):
            try:
                if con is None:
                    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                rs = con.execute("SELECT rowid, receipt_id, time, accepted, received FROM receipts WHERE rowid > ? "
                                 "ORDER BY rowid", (last_r,)).fetchall()
                bs = con.execute("SELECT rowid, entries, skipped FROM batches WHERE rowid > ? ORDER BY rowid",
                                 (last_b,)).fetchall()
            except sqlite3.Error:
                con = None
                continue
            now = time.time()
            with self.lock:
                for rowid, rid, t, acc, rec in rs:
                    self.seen.setdefault(rid, (now, t - CST, acc, rec))
                    last_r = max(last_r, rowid)
                for rowid, n, skipped in bs:
                    self.batches.append((now, n - skipped))
                    last_b = max(last_b, rowid)

    def login(self, name, code):
        c = dash.Client(f"https://127.0.0.1:{self.web}", str(self.W / "intranet/tls/server.pem"))
        st, body = c.call("POST", "/api/v1/auth/activate", {"name": name, "code": code, "password": dash.PASSWORD})
        if st != 200:
            raise RuntimeError(f"activate {name}: HTTP {st} {body[:200]}")
        secret = dash.decode_secret(json.loads(body)["totp_secret"])
        step = int(time.time()) // 30
        st, body = c.call("POST", "/api/v1/auth/confirm", {"name": name, "code": code, "totp": dash.totp(secret, step)})
        if st != 200:
            raise RuntimeError(f"confirm {name}: HTTP {st} {body[:200]}")
        st, body = c.call("POST", "/api/v1/auth/login",
                          {"name": name, "password": dash.PASSWORD, "totp": dash.totp(secret, step + 1)})
        if st != 200:
            raise RuntimeError(f"login {name}: HTTP {st} {body[:200]}")
        c.token = json.loads(body)["token"]
        return c

    def analyst(self, client, scope):
        today = datetime.date.today()
        frm, frm7 = today - datetime.timedelta(days=27), today - datetime.timedelta(days=6)
        q = f"scope={scope}&from={frm}&to={today}"
        api = {
            "indicators": f"{q}&by=week", "timeseries": f"{q}&by=day", "regions": f"scope={scope}&from={frm7}&to={today}",
            "quality": q, "drugs": f"scope={scope}", "nowcast": f"scope={scope}", "mem": f"scope={scope}",
        }
        targets = [(p, f"{p}?scope={scope}", True) for p in WEB_PAGES] + \
                  [(f"/api/v1/{k}", f"/api/v1/{k}?{api[k]}", False) for k in API_CALLS]
        i = 0
        while not self.stop_analysts.is_set():
            label, path, cookie = targets[i % len(targets)]
            i += 1
            t0 = time.time()
            try:
                st, _ = client.call("GET", path, cookie=cookie)
            except OSError as e:
                st = 0
                with self.lock:
                    self.analyst_problems.append(f"{label}: {e}")
            with self.lock:
                self.requests.append((label, time.time() - t0, st))
            self.stop_analysts.wait(self.a.think_secs)

    # ---------------------------------------------------------------- the run
    def load(self):
        a = self.a
        clients = [(self.login(name, code), scope) for name, scope, code in self.analysts]
        self.sample()
        self.t0 = time.time()
        threads = [threading.Thread(target=self.uploader, args=(c,), daemon=True) for c in self.agents]
        readers = [threading.Thread(target=self.analyst, args=cs, daemon=True) for cs in clients]
        watch = [threading.Thread(target=f, daemon=True) for f in (self.sampler, self.watcher)]
        for t in threads + readers + watch:
            t.start()
        log(f"负载运行 {a.minutes} 分钟 (load run): {len(self.agents)} agents, {len(clients)} analysts")
        end = self.t0 + a.minutes * 60
        while time.time() < end:
            time.sleep(min(15, max(0.1, end - time.time())))
            with self.lock:
                nb = sum(n for _, n in self.batches)
                nr = len(self.runs)
            log(f"  {int(time.time() - self.t0)} s: {nr} agent runs, {len(self.seen)} receipts and "
                f"{nb:,} entries in the intranet")
        self.t1 = time.time()
        self.sample()
        self.stop_uploads.set()
        self.stop_analysts.set()
        for t in readers:
            t.join(timeout=60)
        for t in threads:
            t.join(timeout=600)
        self.drain()
        self.sample()
        self.t2 = time.time()
        self.stop_watch.set()
        for t in watch:
            t.join(timeout=30)
        self.dashboard_check(clients[0][0] if clients else None)
        self.stop_services()
        # Every receipt the agents keep: {receipt_id: (hospital, receipt)} of the 2xx ones, their
        # answer times, and the count per HTTP status.
        self.expected_receipts, self.rtimes, self.statuses = {}, {}, {}
        for code, ag in self.agents.items():
            r = self.run(self.bin("flumon-agent"), "receipts", "--config", ag["dir"] / "agent.toml")
            for line in r.stdout.splitlines():
                j = json.loads(line)
                st = int(j.get("status", 0))
                self.statuses[st] = self.statuses.get(st, 0) + 1
                rcpt = j.get("receipt") if isinstance(j.get("receipt"), dict) else {}
                rid = rcpt.get("receipt_id")
                if rid and 200 <= st < 300:
                    self.expected_receipts[rid] = (code, rcpt)
                    self.rtimes[rid] = cst_epoch(j["time"])

    def drain(self):
        """Waits until every receipt the agents got is in the intranet (resending like an operator)."""
        log("排空 (drain): 等待内网收齐回执 (waiting for the intranet to hold every receipt)")
        rids = set(self.agent_receipts())  # agents have all stopped: their queues can be opened
        deadline = time.time() + self.a.drain_secs
        resent_at = time.time()
        while time.time() < deadline:
            with self.lock:
                missing = rids - set(self.seen)
            if not missing:
                break
            if time.time() - resent_at > 45:
                r = self.run(self.bin("flumon-transfer"), "resend", "--config", self.W / "transfer/send.toml",
                             "--since", str(int(self.t0 * 1000)), check=False)
                self.notes.append(f"resend --since: {r.stdout.strip()[:120]}")
                resent_at = time.time()
            time.sleep(1)
        time.sleep(1)

    def dashboard_check(self, client):
        self.cases, self.shown = None, None
        if client is None:
            return
        today = datetime.date.today()
        try:
            self.cases = dash.national_cases(client, today - datetime.timedelta(days=6), today)
            self.shown = dash.overview_cases(client, today)
        except SystemExit as e:  # check_dashboard's fail() exits
            self.notes.append(f"dashboard check: {e}")

    # ---------------------------------------------------------------- report
    def logged_errors(self):
        """{program: (ERROR lines in its log, {message: count})}."""
        out = {}
        for name in self.svc:
            try:
                lines = (self.W / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
            except OSError:
                continue
            kinds, n = {}, 0
            for line in map(strip_ansi, lines):
                if " ERROR " not in line:
                    continue
                n += 1
                msg = line.split(" ERROR ", 1)[1]
                msg = re.sub(r"\d{4,}", "N", msg)[:160]
                kinds[msg] = kinds.get(msg, 0) + 1
            if n:
                out[name] = (n, kinds)
        return out

    def report(self):
        a, W = self.a, self.W
        t0, t1, t2 = self.t0, self.t1, self.t2
        win = t1 - t0
        md, ok, why = [], True, []

        def row(*cells):
            md.append("| " + " | ".join(str(c) for c in cells) + " |")

        rc, times = self.expected_receipts, self.rtimes
        in_win = [(rid, x) for rid, x in rc.items() if t0 - 1 <= times.get(rid, 0) <= t1]
        dmz_acc = sum(int(x.get("accepted", 0)) for _, (_, x) in in_win)
        dmz_rec_win = sum(int(x.get("received", 0)) for _, (_, x) in in_win)
        dmz_rec_all = sum(int(x.get("received", 0)) for _, x in rc.values())
        dmz_acc_all = sum(int(x.get("accepted", 0)) for _, x in rc.values())
        ing_win = sum(n for t, n in self.batches if t0 <= t <= t1)
        ing_all = sum(n for _, n in self.batches)
        lat = [s - d for rid, (s, d, _, _) in self.seen.items() if rid in rc]
        missing = [rid for rid in rc if rid not in self.seen]
        runs = self.runs
        failed = [r for r in runs if r[3] != 0]
        transient = [r for r in failed if r[6]]
        bad_status = {k: v for k, v in self.statuses.items() if not 200 <= k < 300}

        md.append(f"# flumon load run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))}")
        md.append("")
        md.append(f"{len(self.agents)} hospitals (agents uploading without pause, {a.uploads} daily 7-day folders, "
                  f"flumon-synth --scale {a.scale}), {len(self.analysts)} analysts (think time {a.think_secs} s), "
                  f"load window {win:.0f} s, drain {t2 - t1:.0f} s, {os.cpu_count()} cores, load average at the end "
                  f"{os.getloadavg()[0]:.1f}. Binaries: `{self.B}`.")
        md.append("")
        md.append("## Throughput and latency")
        md.append("")
        row("figure", "value")
        row("---", "---:")
        row("agent runs (failed: transient / other)", f"{len(runs):,} ({len(transient)} / {len(failed) - len(transient)})")
        row("uploads acknowledged (receipts held by agents)", f"{len(rc):,}")
        row("receipts by HTTP status", ", ".join(f"{k}: {v:,}" for k, v in sorted(self.statuses.items())))
        row("**DMZ: rows accepted / s** (receipts answered in the window)", f"**{fmt(dmz_acc / win)}**")
        row("DMZ: rows received / s", fmt(dmz_rec_win / win))
        row("**intranet: entries ingested / s** (batches committed in the window)", f"**{fmt(ing_win / win)}**")
        row("intranet entries ÷ DMZ rows accepted, whole run (dedupe drops unchanged resends)",
            fmt(ing_all / dmz_acc_all, 3) if dmz_acc_all else "–")
        row("receipts visible in the intranet", f"{len(rc) - len(missing):,} of {len(rc):,}")
        row("**receipt → visible on the dashboard, p50 / p95 / max (s)**",
            f"**{fmt(pct(lat, 50))} / {fmt(pct(lat, 95))} / {fmt(max(lat) if lat else None)}**")
        row("national cases this week (API) / shown on /overview", f"{fmt(self.cases)} / {self.shown or '–'}")
        md.append("")
        buckets = {}
        last_k = max(0, math.ceil(win / 60) - 1)

        def minute(t):
            return min(last_k, max(0, int((t - t0) // 60)))

        for rid, (_, x) in in_win:
            buckets.setdefault(minute(times[rid]), [0, 0])[0] += int(x.get("accepted", 0))
        for t, n in self.batches:
            if t0 <= t <= t1:
                buckets.setdefault(minute(t), [0, 0])[1] += n
        if buckets:
            md.append("Per minute of the window (rows accepted by the DMZ / entries ingested, per second): " +
                      ", ".join(f"{k + 1}: {v[0] / 60:,.0f} / {v[1] / 60:,.0f}" for k, v in sorted(buckets.items())) +
                      ". The intranet's rate is what the DMZ forwards (new and changed records and every "
                      "receipt), not its capacity: see its CPU below.")
            md.append("")

        md.append("## Dashboard requests")
        md.append("")
        row("page / call", "requests", "p50 ms", "p95 ms", "max ms", "not 200")
        row("---", "---:", "---:", "---:", "---:", "---")
        pages = {}
        for label, secs, st in self.requests:
            pages.setdefault(label, []).append((secs, st))
        dash_errors = 0
        for label in [p for p in WEB_PAGES] + [f"/api/v1/{k}" for k in API_CALLS]:
            v = pages.get(label, [])
            good = [s * 1000 for s, st in v if st == 200]
            bad = {}
            for _, st in v:
                if st != 200:
                    bad[st] = bad.get(st, 0) + 1
            dash_errors += sum(n for st, n in bad.items() if st != 429)
            row(label, len(v), fmt(pct(good, 50), 0), fmt(pct(good, 95), 0), fmt(max(good) if good else None, 0),
                ", ".join(f"{k}: {n}" for k, n in sorted(bad.items())) or "")
        md.append("")

        md.append("## Memory and CPU per process")
        md.append("")
        md.append(f"VmRSS sampled every {a.sample_secs} s during the load window; growth = mean of the last third of "
                  "the samples vs the middle third; \"grows\" when it is over 10 % and over 8 MiB. CPU = utime + stime "
                  "from the start of the window to the end of the drain.")
        md.append("")
        row("process", "RSS start MiB", "middle", "end", "max", "middle→last third", "verdict", "CPU s",
            "% of one core")
        row("---", "---:", "---:", "---:", "---:", "---:", "---", "---:", "---:")
        win_samples = [s for s in self.samples if t0 - 1 <= s[0] <= t1 + 1]
        first, last = self.samples[0], self.samples[-1]
        cpu = {}
        growth_flags = []
        for name in self.svc:
            rss = [s[1][name][1] for s in win_samples if name in s[1]]
            pids = {s[1][name][0] for s in self.samples if name in s[1]}
            c = None
            if name in first[1] and name in last[1] and len(pids) == 1:
                c = last[1][name][2] - first[1][name][2]
            cpu[name] = c
            if len(rss) >= 3:
                n = len(rss)
                mid = statistics.mean(rss[n // 3: 2 * n // 3] or rss)
                end = statistics.mean(rss[2 * n // 3:])
                g = (end - mid) / mid if mid else 0.0
                verdict = "grows" if g > 0.10 and end - mid > 8 else "flat"
                if verdict == "grows":
                    growth_flags.append(name)
                row(name, fmt(rss[0]), fmt(rss[n // 2]), fmt(rss[-1]), fmt(max(rss)), f"{g * 100:+.1f} %", verdict,
                    fmt(c), fmt(c / (t2 - t0) * 100 if c is not None else None))
            else:
                row(name, "–", "–", "–", "–", "–", "too few samples", fmt(c), "–")
        ag_cpu = sum(r[4] for r in runs)
        ag_rss = max((r[5] for r in runs), default=0.0)
        ag_sum = max((s[2] for s in win_samples), default=0.0)
        row(f"agents ({len(runs)} runs)", "–", "–", "–", f"{fmt(ag_rss)} per run, {fmt(ag_sum)} all at once", "–",
            "short-lived", fmt(ag_cpu), fmt(ag_cpu / (t2 - t0) * 100))
        me = resource.getrusage(resource.RUSAGE_SELF)
        row("load.py (this driver)", "–", "–", "–", fmt(me.ru_maxrss / 1024), "–", "–",
            fmt(me.ru_utime + me.ru_stime), "–")
        md.append("")
        if win < 300:
            md.append("(Runs shorter than 5 minutes are too short for the growth verdict to mean much.)")
            md.append("")

        # ------------------------------------------------------------ national arithmetic
        N = NATIONAL
        cores = os.cpu_count() or 1
        c_dmz_s = (cpu.get("dmz") or 0) + (cpu.get("send") or 0)
        c_int_s = (cpu.get("recv") or 0) + (cpu.get("intranet") or 0)
        c_dmz = c_dmz_s / dmz_rec_all if dmz_rec_all else None
        c_int = c_int_s / ing_all if ing_all else None
        dbf = W / "intranet" / "data" / "intranet.db"
        db_bytes = sum(p.stat().st_size for p in dbf.parent.glob("intranet.db*"))
        try:
            con = sqlite3.connect(f"file:{dbf}?mode=ro", uri=True, timeout=10)
            n_records = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            con.close()
        except sqlite3.Error:
            n_records = 0
        md.append("## National scale (ARCHITECTURE.md, \"Scale to plan for\")")
        md.append("")
        md.append("Inputs: " + ", ".join(f"{k} = {v:,}" if isinstance(v, int) else f"{k} = {v}" for k, v in N.items())
                  + f"; cores per node C = {cores} (this machine's kind). Values marked assumption in load.py are "
                  "not in ARCHITECTURE.md.")
        md.append("")
        if c_dmz and c_int:
            u = N["utilisation"]
            r_night = N["dmz_records_per_day"] / (N["night_hours"] * 3600)
            r_burst = N["burst"] * r_night
            node_cap = cores * u / c_dmz
            nodes = math.ceil(r_burst / node_cap)
            nodes_avg = math.ceil(r_night / node_cap)
            prov = N["largest_province_share"] * r_burst
            f = 1 / N["resend_days"]
            ri_night, ri_burst = f * r_night, f * r_burst
            sqlite_cap = u / c_int  # one writer: one core at most
            int_cores = ri_burst * c_int / u
            bpr = db_bytes / n_records if n_records else None
            per_day = N["cases_per_day"] * N["records_per_case"]
            season_gib = per_day * N["season_peak_days"] * bpr / 2**30 if bpr else None
            lines = [
                f"c_dmz = CPU(flumon-dmz + transfer send) ÷ rows received = {c_dmz_s:.1f} s ÷ {dmz_rec_all:,} "
                f"= {c_dmz * 1e6:.0f} µs/row",
                f"c_int = CPU(transfer recv + flumon-intranet) ÷ entries ingested = {c_int_s:.1f} s ÷ {ing_all:,} "
                f"= {c_int * 1e6:.0f} µs/entry (on this run's mix of records and receipts; includes serving the "
                f"analysts: an upper bound)",
                f"r_night = dmz_records_per_day ÷ (night_hours × 3600) = {N['dmz_records_per_day']:,} ÷ "
                f"{N['night_hours'] * 3600:,} = {r_night:,.0f} rows/s;  r_burst = burst × r_night = {r_burst:,.0f} rows/s",
                f"DMZ node capacity = C × utilisation ÷ c_dmz = {cores} × {u} ÷ {c_dmz * 1e6:.0f} µs = {node_cap:,.0f} rows/s",
                f"DMZ nodes = ⌈r_burst ÷ capacity⌉ = ⌈{r_burst:,.0f} ÷ {node_cap:,.0f}⌉ = {nodes} "
                f"(night average alone: ⌈{r_night:,.0f} ÷ {node_cap:,.0f}⌉ = {nodes_avg})",
                f"largest province at burst = {N['largest_province_share']} × r_burst = {prov:,.0f} rows/s → "
                + ("one node carries it" if prov <= node_cap else
                   f"one node does NOT carry it ({prov / node_cap:.1f} × its capacity)"),
                f"DMZ CPU per peak day = dmz_records_per_day × c_dmz ÷ 3600 = "
                f"{N['dmz_records_per_day'] * c_dmz / 3600:,.1f} core-hours",
                f"intranet ingest rate = r ÷ resend_days (unchanged resends stop at the DMZ's dedupe): night "
                f"{ri_night:,.0f} entries/s, burst {ri_burst:,.0f} entries/s",
                f"intranet cores at burst = {ri_burst:,.0f} × {c_int * 1e6:.0f} µs ÷ {u} = {int_cores:.1f}; "
                f"SQLite (one writer, one core) carries u ÷ c_int = {sqlite_cap:,.0f} entries/s → "
                + ("SQLite suffices" if ri_burst <= sqlite_cap else
                   f"SQLite does NOT suffice: PostgreSQL (Citus), about ⌈{int_cores:.1f} ÷ {cores}⌉ = "
                   f"{math.ceil(int_cores / cores)} worker nodes of this kind if its cost per entry is c_int"),
                (f"intranet database size = bytes per stored record (file + WAL ÷ records) × new records per peak "
                 f"day (cases_per_day × records_per_case) × season_peak_days = "
                 f"{bpr:,.0f} B ({db_bytes / 2**20:,.0f} MiB ÷ {n_records:,} records) × {per_day:,.0f} × "
                 f"{N['season_peak_days']} = {season_gib:,.0f} GiB") if bpr else "intranet database size: no records",
            ]
            md.extend(f"- {x}" for x in lines)
        else:
            md.append("- no CPU or record figures: nothing to compute (a program restarted, or nothing was ingested)")
        md.append("")

        # ------------------------------------------------------------ verdict
        unexpected = [e for e in self.exits if not e[3]]
        checks = [
            (not unexpected, f"programs exited: {[(n, r) for n, r, _, _ in unexpected]}"),
            (not (len(failed) - len(transient)) and not bad_status,
             f"uploads failed other than transiently: {len(failed) - len(transient)} runs, statuses {bad_status}"),
            (dash_errors == 0, f"dashboard requests failed: {dash_errors}"),
            (not missing, f"receipts never visible in the intranet: {len(missing)}"),
            (bool(lat) and bool(self.cases), "nothing visible on the dashboard"),
        ]
        for good, msg in checks:
            if not good:
                ok = False
                why.append(msg)
        md.append("## Result")
        md.append("")
        md.append("PASS 通过" if ok else "FAIL 失败: " + "; ".join(why))
        if growth_flags:
            md.append("")
            md.append(f"RSS growth in: {', '.join(growth_flags)} (reported, not a failure by itself)")
        for name, (n, kinds) in self.logged_errors().items():
            md.append(f"- {name} logged {n} ERROR lines (retried, not a failure by itself): " +
                      "; ".join(f"{k} ×{c}" for k, c in sorted(kinds.items(), key=lambda x: -x[1])[:3]))
        for n in self.notes:
            md.append(f"- note: {n}")
        for e in self.run_errors[:5]:
            md.append(f"- upload error: {e}")
        for p in self.analyst_problems[:5]:
            md.append(f"- dashboard: {p}")
        md.append(f"- logs: {W / 'logs'}")
        text = "\n".join(md) + "\n"
        out = Path(a.report) if a.report else W / "load-report.md"
        out.write_text(text)
        print("\n" + text)
        log(f"报告 (report): {out}")
        return ok


def strip_ansi(line):
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--hospitals", type=int, default=40)
    ap.add_argument("--analysts", type=int, default=4)
    ap.add_argument("--uploads", type=int, default=14, help="daily upload folders per hospital (each 7 days)")
    ap.add_argument("--scale", type=float, default=10.0, help="flumon-synth --scale (10: about 2,500 rows an upload)")
    ap.add_argument("--think-secs", type=float, default=1.0, help="pause of each analyst between requests")
    ap.add_argument("--sample-secs", type=float, default=10.0)
    ap.add_argument("--drain-secs", type=int, default=180)
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--work", default=str(ROOT / "target" / "load"))
    ap.add_argument("--report", default=None, help="Markdown report (default WORK/load-report.md)")
    ap.add_argument("--bin-dir", default=os.environ.get("FLUMON_BIN_DIR"),
                    help="folder of the release binaries (then nothing is built); default target/release")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    a.no_disk_full, a.recover_secs = True, 90
    r = Load(a)
    ok = False
    try:
        r.prepare()
        r.load()
        ok = r.report()
    finally:
        r.stop_uploads.set()
        r.stop_analysts.set()
        r.stop_watch.set()
        r.stop_supervising.set()
        r.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
