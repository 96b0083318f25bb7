#!/usr/bin/env python3
"""flumon fault campaign: every program of the system running as its own process, the way it
is deployed, under continuous uploads from several hospital agents, while faults are injected.

    agents ─HTTPS─▶ flumon-dmz ─outbox─▶ flumon-transfer send ═UDP═▶ recv ─spool─▶ flumon-intranet
       ▲                ▲                         ▲                     ▲               ▲
       └──── kill -9 at random moments, disk full, link down, receiver down, clock skew,
             duplicated / reordered / corrupt batch files in every spool folder ────────┘

At the end the campaign drains (faults off, every agent runs once more, the operator resends
what the receiver reported missing), then checks against an oracle built from what was
acknowledged, not from the generated files (the DMZ's scope depends on what it has seen, so the
files alone cannot say which rows it accepted):
  * every receipt an agent holds is in the intranet;
  * the raw archive is exported (`flumon-dmz export-raw`) and opened with the campaign's own vault
    key (`flumon-vault open`): it holds, for each receipt, the upload exactly as the DMZ received it.
    The rows of an agent-held receipt minus the rows its errors name are the rows accepted; their
    natural keys (ZZJGDM, type, JLID), with the latest GXSJ deciding between versions and CZLX=3
    leaving a tombstone as the intranet does, are the expected records;
  * the intranet's `records` (JLID pseudonyms recomputed with the DMZ's pseudonym key) hold every
    expected key (lost = 0), once (duplicated = 0), in the expected version; a key found but not
    expected must come from an upload the DMZ acknowledged whose receipt no agent kept (the agent
    was killed between answer and fsync, and sent the chunk again);
  * the intranet's rollups equal a recomputation from its records (`flumon-intranet check`);
  * `flumon-transfer reconcile` of the sender's and receiver's journals: nothing lost or altered;
  * after the disk-full fault the DMZ answers an upload 200 again within --recover-secs (90 s);
  * no program exited by itself, except the DMZ after the disk-full fault (crash-only: it exits on
    a persistent store error and the campaign, as systemd would, restarts it).
and prints a summary table. Exit status 0 only when all hold.

Usage: tests/campaign/campaign.py [--minutes M] [--hospitals N] [--uploads U] [--seed S] [--work DIR]
                                  [--bin-dir DIR | --no-build] [--no-disk-full]
Only the standard library; Linux; `faketime` (optional) for the clock-skew fault; root (optional)
for the disk-full fault on a small tmpfs.
"""

import argparse
import calendar
import csv
import datetime
import hmac
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_toml(path, key, value, section=None):
    """Replaces `key = …` (inside [section] when given) in a TOML file written by an init command."""
    lines = Path(path).read_text().splitlines()
    cur, done = None, False
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            cur = s.strip("[]")
            continue
        if (section is None or cur == section) and s.split("=")[0].strip() == key and not done:
            lines[i] = f"{key} = {value}"
            done = True
    if not done:
        raise SystemExit(f"{path}: no key {key} in [{section}]")
    Path(path).write_text("\n".join(lines) + "\n")


class Svc:
    """One long-running program, restartable, killed with SIGKILL by the campaign.

    While `held` the campaign itself stops and starts it; otherwise the supervisor thread
    (`Campaign.supervise`, systemd's `Restart=always` of a deployment) restarts it when it exits."""

    def __init__(self, name, argv, logdir, cwd=None):
        self.name, self.argv, self.cwd = name, argv, cwd
        self.logf = open(logdir / f"{name}.log", "ab")
        self.proc = None
        self.env = None  # e.g. libfaketime's LD_PRELOAD (not the `faketime` wrapper: it forks, and
        #                  killing the wrapper would orphan the program it started)
        self.lock = threading.RLock()
        self.held = False

    def start(self):
        note = f"FAKETIME={self.env.get('FAKETIME')}" if self.env else ""
        self.logf.write(f"\n==== start {time.ctime()} {note}\n".encode())
        self.logf.flush()
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.argv, stdout=self.logf, stderr=self.logf, cwd=self.cwd, env=env)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        self.held = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


def wait_tcp(port, secs=60):
    end = time.time() + secs
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False


class Campaign:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.W = Path(a.work).resolve()
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        self.B = Path(a.bin_dir) if a.bin_dir else target / "release"
        self.faults = {}  # fault → times injected
        self.notes = []
        self.stop_uploads = threading.Event()
        self.agent_procs = {}
        self.agent_lock = threading.Lock()
        self.tmpfs = False
        self.exits = []  # (program, exit status, time, expected): exits the campaign did not cause
        self.disk_full_at = self.disk_freed_at = None
        self.stop_supervising = threading.Event()

    def bin(self, name):
        return str(self.B / name)

    def run(self, *argv, check=True, env=None, capture=True):
        r = subprocess.run([str(x) for x in argv], capture_output=capture, text=True, env=env)
        if check and r.returncode != 0:
            raise SystemExit(f"failed: {' '.join(map(str, argv))}\n{r.stdout}\n{r.stderr}")
        return r

    def fault(self, name):
        self.faults[name] = self.faults.get(name, 0) + 1

    # ---------------------------------------------------------------- setup
    def setup(self):
        self.configure()
        self.start_services()
        self.enrol()

    def configure(self):
        """Builds (unless --bin-dir), generates keys and configuration of every program in WORK."""
        a, W = self.a, self.W
        if not a.no_build and not a.bin_dir:
            log("构建 (building release binaries)")
            subprocess.run(["cargo", "build", "--release", "-q", "-p", "flumon-dmz", "-p", "flumon-transfer",
                            "-p", "flumon-intranet", "-p", "flumon-agent", "-p", "flumon-tests", "-p", "flumon-vault"],
                           cwd=ROOT, check=True)
        if W.exists():
            subprocess.run(["umount", str(W / "dmz" / "data")], capture_output=True)
            shutil.rmtree(W)
        (W / "logs").mkdir(parents=True)
        log(f"配置与密钥 (configuration and keys) in {W}")
        # The campaign's own offline vault: its key opens the raw archive for the oracle.
        (W / "vault.pass").write_text("campaign vault passphrase\n")
        self.run(self.bin("flumon-vault"), "keygen", "--out", W / "vault", "--passphrase-file", W / "vault.pass",
                 "--kdf-mib", 8, "--kdf-passes", 1)
        self.run(self.bin("flumon-dmz"), "init", W / "dmz", "--vault-pubkey", W / "vault" / "vault.pub.pem")
        self.run(self.bin("flumon-transfer"), "init", "--dmz-dir", W / "dmz", "--out", W / "transfer")
        self.run(self.bin("flumon-intranet"), "init", W / "intranet", "--dmz-dir", W / "dmz")
        self.pub, self.adm, self.web, self.udp = free_port(), free_port(), free_port(), free_port(socket.SOCK_DGRAM)
        dmz_toml = W / "dmz" / "dmz.toml"
        set_toml(dmz_toml, "public", f'"127.0.0.1:{self.pub}"', "listen")
        set_toml(dmz_toml, "admin", f'"127.0.0.1:{self.adm}"', "listen")
        set_toml(dmz_toml, "max_age_secs", "2", "batch")
        set_toml(W / "transfer" / "send.toml", "target", f'"127.0.0.1:{self.udp}"', "diode")
        set_toml(W / "transfer" / "send.toml", "rate_mbit", "200", "diode")
        set_toml(W / "transfer" / "recv.toml", "listen", f'"127.0.0.1:{self.udp}"', "diode")
        set_toml(W / "transfer" / "recv.toml", "gap_grace_secs", "5")
        it = W / "intranet" / "intranet.toml"
        set_toml(it, "listen", f'"127.0.0.1:{self.web}"')
        set_toml(it, "spool", f'"{W / "transfer" / "spool"}"', "paths")
        set_toml(it, "poll_seconds", "1", "ingest")
        if os.geteuid() == 0 and not a.no_disk_full:
            data = W / "dmz" / "data"
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384m", "tmpfs", str(data)], capture_output=True)
            self.tmpfs = r.returncode == 0
        if not self.tmpfs:
            self.notes.append("磁盘满故障未运行 (disk-full fault skipped: " +
                              ("--no-disk-full)" if a.no_disk_full else "needs root to mount a small tmpfs)"))

    def start_services(self):
        """Starts DMZ, transfer send and recv, intranet, each its own process, and their supervisor."""
        W = self.W
        dmz_toml, it = W / "dmz" / "dmz.toml", W / "intranet" / "intranet.toml"
        L = W / "logs"
        self.svc = {
            "dmz": Svc("dmz", [self.bin("flumon-dmz"), "serve", "--config", str(dmz_toml)], L),
            "send": Svc("send", [self.bin("flumon-transfer"), "send", "--config", str(W / "transfer/send.toml")], L),
            "recv": Svc("recv", [self.bin("flumon-transfer"), "recv", "--config", str(W / "transfer/recv.toml")], L),
            "intranet": Svc("intranet", [self.bin("flumon-intranet"), "serve", "--config", str(it)], L),
        }
        for s in self.svc.values():
            s.start()
        if not (wait_tcp(self.pub) and wait_tcp(self.adm) and wait_tcp(self.web)):
            raise SystemExit(f"services did not start; see {L}")
        threading.Thread(target=self.supervise, daemon=True).start()

    def enrol(self):
        """Generates the hospitals' synthetic uploads, registers each hospital and enrols its agent."""
        W = self.W
        dmz_toml = W / "dmz" / "dmz.toml"
        if not (W / "synth" / "hospitals.json").exists():
            self.generate()
        hosp = json.loads((W / "synth" / "hospitals.json").read_text())
        self.agents = {}
        for h in hosp:
            code = h["code"]
            j = json.loads(self.run(self.bin("flumon-dmz"), "admin", "create-hospital", "--config", dmz_toml,
                                    "--uscc", code, "--name", h["name"], "--region", h["region"],
                                    "--level", h["level"]).stdout)
            enrol = json.loads(self.run(self.bin("flumon-dmz"), "admin", "enrol-code", "--config", dmz_toml,
                                        "--uscc", code).stdout)["code"]
            A = W / "agents" / code
            self.run(self.bin("flumon-agent"), "enroll", "--dmz", f"https://127.0.0.1:{self.pub}", "--uscc", code,
                     "--code", enrol, "--ca", W / "dmz/ca/ca.pem", "--config-dir", A, "--token", j["token"])
            days = sorted(p.name for p in (W / "synth" / code).iterdir() if p.is_dir())
            self.agents[code] = {"dir": A, "days": days, "done": set(), "runs": 0, "fail": 0}
            self.point_agent(code, days[0])
        log(f"{len(self.agents)} 个前置机已注册 (agents enrolled)")

    def generate(self):
        """The synthetic uploads: --uploads daily folders per hospital, each resending 7 days, ending today."""
        a, W = self.a, self.W
        first = datetime.date.today() - datetime.timedelta(days=a.uploads - 1)
        log(f"合成数据 (synthetic data): {a.hospitals} hospitals, {a.uploads} daily uploads from {first}")
        self.run(self.bin("flumon-synth"), "--seed", a.seed, "--hospitals", a.hospitals, "--date", first,
                 "--uploads", a.uploads, "--days", 7, "--scale", a.scale, "--lab-only-rate", 0,
                 "--out", W / "synth")

    def point_agent(self, code, day):
        cfg = self.agents[code]["dir"] / "agent.toml"
        text = cfg.read_text().splitlines()
        out, in_src = [], False
        for line in text:
            s = line.strip()
            if s.startswith("["):
                in_src = s == "[source]"
            if in_src and (s.startswith("folder") or s.startswith("days")):
                continue
            out.append(line)
            if s == "[source]":
                out.append(f'folder = "{self.W / "synth" / code / day}"')
                out.append("days = 30")
        cfg.write_text("\n".join(out) + "\n")

    # ---------------------------------------------------------------- agents
    def agent_once(self, code, day):
        ag = self.agents[code]
        self.point_agent(code, day)
        with open(self.W / "logs" / f"agent-{code}.log", "ab") as lf:
            p = subprocess.Popen([self.bin("flumon-agent"), "run", "--config", str(ag["dir"] / "agent.toml"),
                                  "--once", "--rerun", "--attempts", "3"], stdout=lf, stderr=lf)
            with self.agent_lock:
                self.agent_procs[code] = p
            rc = p.wait()
            with self.agent_lock:
                self.agent_procs.pop(code, None)
        ag["runs"] += 1
        if rc == 0:
            ag["done"].add(day)
        else:
            ag["fail"] += 1
        return rc

    def uploader(self, code):
        days = self.agents[code]["days"]
        i = 0
        while not self.stop_uploads.is_set():
            self.agent_once(code, days[i % len(days)])
            i += 1
            time.sleep(self.rng.uniform(0, 1))

    def kill_an_agent(self):
        with self.agent_lock:
            procs = [p for p in self.agent_procs.values() if p.poll() is None]
        if procs:
            self.rng.choice(procs).send_signal(signal.SIGKILL)
            self.fault("kill -9 flumon-agent")

    # ---------------------------------------------------------------- supervision
    def exited(self, s):
        """Records an exit the campaign did not cause (called with `s.lock` held)."""
        rc, now = s.proc.returncode, time.time()
        full = self.disk_full_at is not None and now >= self.disk_full_at and \
            (self.disk_freed_at is None or now <= self.disk_freed_at + 120)
        expected = s.name == "dmz" and full
        self.exits.append((s.name, rc, now, expected))
        if expected:
            self.fault("DMZ exit after disk full, restarted (crash-only)")
        log(f"{s.name} 自行退出 (exited by itself), status {rc}" + ("" if expected else " — unexpected"))
        s.proc = None

    def supervise(self):
        """Restarts a program that exited by itself, as the systemd units do (`Restart=on-failure`,
        `RestartSec=5s`, deploy/systemd/)."""
        while not self.stop_supervising.wait(0.5):
            for s in self.svc.values():
                with s.lock:
                    if s.held or s.proc is None or s.proc.poll() is None:
                        continue
                    self.exited(s)
                time.sleep(5)
                with s.lock:
                    if not s.held and s.proc is None:
                        s.start()

    def hold(self, s):
        """The campaign takes `s` over (kill, restart) from the supervisor."""
        with s.lock:
            s.held = True
            if s.proc is not None and s.proc.poll() is not None:
                self.exited(s)

    def release(self, s):
        with s.lock:
            if s.proc is None:
                s.start()
            s.held = False

    # ---------------------------------------------------------------- faults
    def kill_cycle(self, name):
        s = self.svc[name]
        time.sleep(self.rng.uniform(0.2, 3.0))
        self.hold(s)
        s.kill9()
        self.fault(f"kill -9 {name}")
        time.sleep(self.rng.uniform(0.0, 2.0))
        s.start()
        self.release(s)

    def link_down(self, secs):
        """The receiver frozen (SIGSTOP): nothing is read from the link, the kernel drops what overflows."""
        log(f"故障: 链路中断 {secs} s (link down: receiver frozen)")
        self.svc["recv"].signal(signal.SIGSTOP)
        time.sleep(secs)
        self.svc["recv"].signal(signal.SIGCONT)
        self.fault("link down")

    def receiver_down(self, secs):
        log(f"故障: 接收端停机 {secs} s (receiver down)")
        s = self.svc["recv"]
        self.hold(s)
        s.kill9()
        time.sleep(secs)
        s.start()
        self.release(s)
        self.fault("receiver down")

    def clock_skew(self, name, offset, secs):
        lib = next((p for p in ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                                 "/usr/lib/faketime/libfaketime.so.1"] if os.path.exists(p)), None)
        if not lib:
            self.notes.append("时钟偏差故障未运行 (clock skew skipped: libfaketime not installed, apt-get install faketime)")
            return
        log(f"故障: {name} 时钟偏差 {offset} (clock skew)")
        s = self.svc[name]
        self.hold(s)
        s.kill9()
        s.env = {"LD_PRELOAD": lib, "FAKETIME": offset, "FAKETIME_DONT_RESET": "1"}
        s.start()
        self.release(s)  # an exit under skew is the supervisor's to see
        time.sleep(secs)
        self.hold(s)
        s.kill9()
        s.env = None
        s.start()
        self.release(s)
        self.fault(f"clock skew {offset} {name}")

    def disk_full(self, secs):
        if not self.tmpfs:
            return
        log(f"故障: DMZ 磁盘满 {secs} s (disk full)")
        filler = self.W / "dmz" / "data" / "filler"
        self.disk_full_at = time.time()
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
        self.disk_full_status = self.probe_upload()
        time.sleep(secs)
        filler.unlink()
        self.disk_freed_at = time.time()
        self.fault("disk full")
        # The DMZ exits on a store error that persists (crash-only) and the supervisor restarts it, or
        # it goes on serving: either way an upload must be answered 200 again soon. Nothing else is
        # injected meanwhile (a kill -9 would hide a DMZ that hangs).
        while True:
            status = self.probe_upload(max_time=10)
            waited = time.time() - self.disk_freed_at
            if status == "200" or waited > self.a.recover_secs:
                break
            time.sleep(2)
        self.disk_full_after = (status, round(waited))
        if status != "200":
            self.dmz_not_recovered = f"no upload answered 200 within {self.a.recover_secs} s after space returned " \
                                     f"(last answer: {status})"
            log(f"DMZ 未恢复 (the DMZ did not recover): {self.dmz_not_recovered}; kill -9 and restart so the run goes on")
            s = self.svc["dmz"]
            self.hold(s)
            s.kill9()
            s.start()
            self.release(s)

    def probe_upload(self, max_time=30):
        """One direct upload with an agent's certificate and token; returns the HTTP status ("000": no answer).
        Its receipt is kept by no agent: the oracle counts it among those."""
        code = next(iter(self.agents))
        A = self.agents[code]["dir"]
        day = self.agents[code]["days"][0]
        f = self.W / "synth" / code / day / "visits.csv"
        token = (A / "token").read_text().strip() if (A / "token").exists() else ""
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(max_time),
                            "--cacert", str(self.W / "dmz/ca/ca.pem"), "--cert", str(A / "agent.pem"),
                            "--key", str(A / "agent.key"), "-H", f"Authorization: Bearer {token}",
                            "-H", "Content-Type: text/csv", "--data-binary", f"@{f}",
                            f"https://127.0.0.1:{self.pub}/api/v1/upload/visits"], capture_output=True, text=True)
        return r.stdout.strip() or "no answer"

    def spool_files(self):
        """Duplicated, reordered and corrupt batch files in every spool folder."""
        W = self.W
        done = W / "transfer" / "spool" / "done"
        inbound = W / "transfer" / "spool"
        olds = sorted(done.glob("*.fbatch")) if done.exists() else []
        for p in reversed(olds[-5:]):  # reordered duplicates of already ingested batches
            shutil.copy(p, inbound / p.name)
        if olds:
            self.fault("duplicated + reordered batch files (intranet spool)")
        junk = os.urandom(4096)
        (W / "dmz" / "outbox" / "dmz-1-corrupt-campaign.fbatch").write_bytes(junk)
        (inbound / "dmz-1-99999999999999999999.fbatch").write_bytes(junk)
        ferry = W / "transfer" / "ferry"
        ferry.mkdir(exist_ok=True)
        (ferry / "dmz-1-99999999999999999998.fbatch").write_bytes(junk)
        self.fault("corrupt file in every spool folder")

    def campaign(self):
        a = self.a
        threads = [threading.Thread(target=self.uploader, args=(c,), daemon=True) for c in self.agents]
        for t in threads:
            t.start()
        end = time.time() + a.minutes * 60
        special = ["link", "recvdown", "skew_dmz", "skew_intranet", "disk", "spool"]
        self.rng.shuffle(special)
        cycle = 0
        short = a.minutes < 5
        while time.time() < end:
            cycle += 1
            victim = ["dmz", "send", "recv", "intranet", "agent"][cycle % 5]
            if victim == "agent":
                time.sleep(self.rng.uniform(0.5, 3))
                self.kill_an_agent()
            else:
                self.kill_cycle(victim)
            if special and cycle % 3 == 0:
                f = special.pop()
                if f == "link":
                    self.link_down(15 if short else 120)
                elif f == "recvdown":
                    self.receiver_down(20 if short else 180)
                elif f == "skew_dmz":
                    self.clock_skew("dmz", "+10m", 10 if short else 60)
                elif f == "skew_intranet":
                    self.clock_skew("intranet", "-10m", 10 if short else 60)
                elif f == "disk":
                    self.disk_full(10 if short else 60)
                elif f == "spool":
                    self.spool_files()
            time.sleep(self.rng.uniform(0.5, 2.0))
        for f in special:  # whatever the time left did not reach
            self.notes.append(f"未注入 (not reached in time): {f}")
        self.stop_uploads.set()
        for t in threads:
            t.join(timeout=600)

    # ---------------------------------------------------------------- drain and check
    def drain(self, passes=1):
        log(f"排空: 停止故障, 每个前置机补传全部日期 ×{passes} (drain: every agent sends every day again)")
        up = wait_tcp(self.pub, 90)
        if not up:
            self.notes.append("DMZ 未恢复, 排空跳过 (the DMZ did not come back: drain skipped)")
        for code, ag in self.agents.items() if up else ():
            for day in ag["days"] * passes:
                for _ in range(5):
                    if self.agent_once(code, day) == 0:
                        break
                    time.sleep(2)
        self.expected_receipts = self.agent_receipts()
        log(f"前置机持有回执 {len(self.expected_receipts)} (receipts held by agents); 等待内网 (waiting for the intranet)")
        db = self.W / "intranet" / "data" / "intranet.db"
        deadline = time.time() + (self.a.drain_secs if up else 0)
        resent_at = 0.0
        since = self.started_ms
        while time.time() < deadline:
            have = self.intranet_receipts(db)
            missing = set(self.expected_receipts) - have
            if not missing:
                break
            if time.time() - resent_at > 45:  # the operator resends what may have been lost on the link
                r = self.run(self.bin("flumon-transfer"), "resend", "--config", self.W / "transfer/send.toml",
                             "--since", str(since), check=False)
                self.notes.append(f"resend --since: {r.stdout.strip()[:120]}")
                resent_at = time.time()
            time.sleep(3)
        time.sleep(5)  # let the last ingest commit
        self.stop_services()

    def stop_services(self):
        """Stops supervising, notes any program that exited by itself, then stops every program."""
        self.stop_supervising.set()
        for s in self.svc.values():
            with s.lock:
                if s.proc is not None and s.proc.poll() is not None:
                    self.exited(s)
            s.stop()

    def agent_receipts(self):
        """{receipt_id: (hospital, receipt)} of the 2xx receipts the agents hold (self.other_rids: the rest)."""
        out = {}
        self.other_rids = set()
        for code, ag in self.agents.items():
            r = self.run(self.bin("flumon-agent"), "receipts", "--config", ag["dir"] / "agent.toml")
            for line in r.stdout.splitlines():
                j = json.loads(line)
                rc = j.get("receipt") or {}
                rid = rc.get("receipt_id") if isinstance(rc, dict) else None
                if rid and 200 <= int(j.get("status", 0)) < 300:
                    out[rid] = (code, rc)
                elif rid:
                    self.other_rids.add(rid)
        return out

    @staticmethod
    def intranet_receipts(db):
        if not db.exists():
            return set()
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            rows = con.execute("SELECT receipt_id FROM receipts").fetchall()
            con.close()
            return {r[0] for r in rows}
        except sqlite3.Error:
            return set()

    # ---------------------------------------------------------------- the oracle
    def open_archive(self, batch=int(os.environ.get("FLUMON_CAMPAIGN_EXPORT_BATCH", 800))):
        """Exports the DMZ's raw archive and opens it with the campaign's vault key:
        {receipt_id: (org, type, CSV path)} of every acknowledged upload, as the DMZ received it.

        `flumon-vault open` journals every item it opens in one journal entry, which may not exceed
        64 KiB (about 2,000 items), so the archive is exported in pieces of about `batch` items: newest
        first with `export-raw --since` (it takes only items not exported yet), the rest last."""
        W = self.W
        con = sqlite3.connect(f"file:{W / 'intranet' / 'data' / 'intranet.db'}?mode=ro", uri=True, timeout=30)
        times = sorted((t for (t,) in con.execute("SELECT time FROM receipts")), reverse=True)
        con.close()
        since = [None if i is None else datetime.datetime.fromtimestamp(times[i], datetime.timezone.utc)
                 .strftime("%Y-%m-%dT%H:%M:%S") for i in list(range(batch, len(times), batch)) + [None]]
        items = {}
        for n, cut in enumerate(since):
            to = W / "export" / f"{n:03d}"
            argv = [self.bin("flumon-dmz"), "export-raw", "--config", W / "dmz/dmz.toml", "--to", to]
            exp = json.loads(self.run(*argv, *(["--since", cut] if cut else [])).stdout)
            if not exp.get("items"):
                continue
            folder = Path(exp["folder"])
            folder = folder if folder.is_absolute() else to / folder
            manifest = json.loads((folder / "manifest.json").read_text())
            out = W / "opened"
            for code in sorted({it["hospital"] for it in manifest["items"]}):
                self.run(self.bin("flumon-vault"), "open", folder, "--vault-dir", W / "vault",
                         "--passphrase-file", W / "vault.pass", "--hospital", code,
                         "--reason", "fault campaign oracle", "--officer", "campaign", "--out", out,
                         "--dmz-pubkey", W / "dmz/keys/dmz-sign.pub.pem")
            for it in manifest["items"]:
                if it.get("kind") != "upload" or not it.get("receipt_id"):
                    continue
                path = out / f"{it['item_id']}.csv"
                files = [path] if path.exists() else list(out.glob(f"{it['item_id']}.*"))
                items[it["receipt_id"]] = (it["hospital"], it.get("type"), files[0] if files else None)
        return items

    @staticmethod
    def rows_of(path):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))

    def pseudonym(self, org, ty, jlid):
        """The intranet's rec_key: HMAC-SM3(K_pseudo, ZZJGDM ‖ 0x1F ‖ "JLID:<type>" ‖ 0x1F ‖ JLID), first 16
        bytes, hex digits written as letters a–p (shared/src/desens/keys.rs)."""
        msg = b"\x1f".join([org.encode(), f"JLID:{ty}".encode(), jlid.encode()])
        mac = hmac.new(self.pkey, msg, "sm3").hexdigest()[:32]
        return "".join(chr(ord("a") + int(c, 16)) for c in mac)

    @staticmethod
    def gxsj_secs(text):
        """GXSJ as the intranet stores it: seconds since 1970-01-01T00:00:00 of the CST wall time. The
        forms accepted are those of shared/src/validate/cells.rs (parse_date, parse_datetime)."""
        def num(x, lo, hi):
            if not (lo <= len(x) <= hi and x.isascii() and x.isdigit()):
                raise ValueError(x)
            return int(x)

        def date(d):
            if len(d) == 8 and d.isascii() and d.isdigit():
                return int(d[0:4]), int(d[4:6]), int(d[6:8])
            parts = d.split("-" if "-" in d else "/")
            if len(parts) != 3:
                raise ValueError(d)
            return num(parts[0], 4, 4), num(parts[1], 1, 2), num(parts[2], 1, 2)

        t = text.strip()
        cut = min((i for i in (t.find("T"), t.find(" ")) if i >= 0), default=-1)
        if cut < 0:
            raise SystemExit(f"GXSJ not understood: {text!r}")
        hms = t[cut + 1:].lstrip().split(":")
        if len(hms) not in (2, 3):
            raise SystemExit(f"GXSJ not understood: {text!r}")
        y, mo, d = date(t[:cut])
        h, mi = num(hms[0], 1, 2), num(hms[1], 2, 2)
        sec = num(hms[2], 2, 2) if len(hms) == 3 else 0
        return calendar.timegm(datetime.datetime(y, mo, d, h, mi, sec).timetuple())

    def versions(self, rid, rc, path, accepted_only, out, problems):
        """Adds the (GXSJ, deleted) of the rows of one upload to out[(org, type, rec_key)]."""
        ty = rc.get("type")
        rows = self.rows_of(path)
        if accepted_only:
            if rc.get("errors_truncated"):
                problems.append(f"{rid}: errors truncated, accepted rows unknown")
            bad = {int(e.get("row", 0)) for e in rc.get("errors", [])}
            if len(rows) != int(rc.get("received", -1)):
                problems.append(f"{rid}: archive has {len(rows)} rows, receipt received {rc.get('received')}")
            if 0 in bad:
                return 0
            rows = [r for i, r in enumerate(rows, 1) if i not in bad]
            if len(rows) != int(rc.get("accepted", -1)):
                problems.append(f"{rid}: {len(rows)} rows not named in errors, receipt accepted {rc.get('accepted')}")
        for r in rows:
            org, jlid = (r.get("ZZJGDM") or "").strip(), (r.get("JLID") or "").strip()
            if not org or not jlid or not (r.get("GXSJ") or "").strip():
                continue
            key = (org, ty, self.pseudonym(org, ty, jlid))
            out.setdefault(key, set()).add((self.gxsj_secs(r["GXSJ"]), (r.get("CZLX") or "").strip() == "3"))
        return len(rows)

    def oracle(self):
        """expected: {(org, type, rec_key): {(gxsj, deleted), …}} of the rows the receipts agents hold accepted;
        orphan: the same over every row of uploads the DMZ acknowledged without an agent keeping the receipt."""
        self.pkey = bytes.fromhex((self.W / "dmz/keys/pseudonym.key").read_text().strip())
        archive = self.open_archive()
        expected, orphan, problems = {}, {}, []
        accepted_rows = 0
        for rid, (code, stored) in self.expected_receipts.items():
            rc = stored
            if int(rc.get("accepted", 0)) == 0:
                continue
            org, ty, path = archive.get(rid, (None, None, None))
            if path is None:
                problems.append(f"{rid}: acknowledged upload not in the raw archive")
                continue
            if org != code or ty != rc.get("type"):
                problems.append(f"{rid}: archive says {org}/{ty}, receipt {code}/{rc.get('type')}")
            accepted_rows += self.versions(rid, rc, path, True, expected, problems)
        self.orphans = 0
        for rid, (org, ty, path) in archive.items():
            if rid in self.expected_receipts or rid in self.other_rids or path is None:
                continue
            self.orphans += 1
            self.versions(rid, {"type": ty}, path, False, orphan, problems)
        self.accepted_rows = accepted_rows
        self.oracle_problems = problems
        return expected, orphan

    def found(self):
        """{(org, type, rec_key): (gxsj, deleted, rows)} of the intranet's records."""
        con = sqlite3.connect(f"file:{self.W / 'intranet' / 'data' / 'intranet.db'}?mode=ro", uri=True, timeout=30)
        out = {(o, t, k): (g, bool(d), n) for o, t, k, g, d, n in
               con.execute("SELECT org, ty, rec_key, MAX(gxsj), MAX(deleted), COUNT(*) FROM records "
                           "GROUP BY org, ty, rec_key")}
        con.close()
        return out

    @staticmethod
    def latest(versions):
        """The versions the intranet may hold: those with the latest GXSJ (ties broken by the DMZ sequence)."""
        top = max(g for g, _ in versions)
        return {(g, d) for g, d in versions if g == top}

    def check(self):
        W = self.W
        chk = self.run(self.bin("flumon-intranet"), "check", "--config", W / "intranet/intranet.toml", check=False)
        c = json.loads(chk.stdout) if chk.stdout.strip() else {"records": {}, "mismatch_count": -1}
        expected, orphan = self.oracle()
        found = self.found()
        lost = [k for k in expected if k not in found]
        dup = sum(n - 1 for _, _, n in found.values() if n > 1)
        wrong, stale_explained = [], 0
        for k, vs in expected.items():
            if k not in found:
                continue
            g, d, _ = found[k]
            if (g, d) in self.latest(vs):
                continue
            if (g, d) in orphan.get(k, set()) and g >= max(x for x, _ in vs):
                stale_explained += 1  # a newer version from an upload whose receipt no agent kept
            else:
                wrong.append(k)
        extra = [k for k in found if k not in expected]
        unexplained = [k for k in extra if k not in orphan]
        have = self.intranet_receipts(W / "intranet" / "data" / "intranet.db")
        rc_missing = len(set(self.expected_receipts) - have)
        rejected_rows = sum(int(rc.get("rejected", 0)) for _, rc in self.expected_receipts.values())
        rejected_codes = {}
        for _, rc in self.expected_receipts.values():
            for code, n in (rc.get("error_counts") or {}).items():
                rejected_codes[code] = rejected_codes.get(code, 0) + n
        rec = self.run(self.bin("flumon-transfer"), "reconcile",
                       "--sender-key", W / "transfer/keys/send-journal.pub.pem",
                       "--receiver-key", W / "transfer/keys/recv-journal.pub.pem",
                       W / "transfer/send-journal.log", W / "transfer/recv-journal.log", check=False)
        summary = rec.stdout.strip().splitlines()[-1] if rec.stdout.strip() else rec.stderr.strip()[-200:]
        unexpected_exits = [e for e in self.exits if not e[3]]
        tombstones = sum(1 for k in expected if k in found and found[k][1])
        rows = [
            ("faults injected", sum(self.faults.values())),
            ("receipts held by agents", len(self.expected_receipts)),
            ("receipts missing in the intranet (must be 0)", rc_missing),
            ("rows accepted by those receipts", self.accepted_rows),
            ("rows rejected by those receipts", rejected_rows),
            ("acknowledged natural keys (expected)", len(expected)),
            ("records found in the intranet", len(found)),
            ("  of which expected tombstones (CZLX=3)", tombstones),
            ("lost = expected − found (must be 0)", len(lost)),
            ("duplicated: extra rows per natural key (must be 0)", dup),
            ("wrong version: not the latest GXSJ (must be 0)", len(wrong)),
            ("found − expected", len(extra)),
            ("  unexplained by unkept receipts (must be 0)", len(unexplained)),
            ("acknowledged uploads whose receipt no agent kept", self.orphans),
            ("oracle inconsistencies (must be 0)", len(self.oracle_problems)),
            ("rollup cells differing from recomputation (must be 0)", c.get("mismatch_count", -1)),
            ("reconcile exit status (must be 0)", rec.returncode),
            ("unexpected program exits (must be 0)", len(unexpected_exits)),
        ]
        not_recovered = getattr(self, "dmz_not_recovered", None)
        ok = rc_missing == 0 and not lost and dup == 0 and not wrong and not unexplained \
            and not self.oracle_problems and c.get("mismatch_count") == 0 and rec.returncode == 0 \
            and not unexpected_exits and not not_recovered and len(expected) > 0
        print("\n== 故障演练汇总 (fault campaign summary)")
        for k, n in sorted(self.faults.items()):
            print(f"  {k:<56} {n:>8}")
        print("  " + "-" * 65)
        for k, v in rows:
            print(f"  {k:<56} {v:>8}")
        if rejected_codes:
            print("  rejections by code: " + ", ".join(f"{k} {v}" for k, v in sorted(rejected_codes.items())))
        if stale_explained:
            print(f"  newer versions from uploads whose receipt no agent kept: {stale_explained}")
        print(f"  reconcile: {summary}")
        if hasattr(self, "disk_full_status"):
            st, secs = getattr(self, "disk_full_after", ("?", "?"))
            print(f"  upload answer while the DMZ disk was full: HTTP {self.disk_full_status}; "
                  f"after space returned: HTTP {st} after {secs} s")
        if not_recovered:
            print(f"  DMZ NOT RECOVERED after disk full: {not_recovered}")
        for name, rc, t, expected_exit in self.exits[:10]:
            print(f"  exit: {name} status {rc} at {time.strftime('%H:%M:%S', time.localtime(t))}"
                  + (" (after disk full: expected, restarted)" if expected_exit else " UNEXPECTED"))
        if len(self.exits) > 10:
            print(f"  … {len(self.exits) - 10} more exits")
        for p in self.oracle_problems[:20]:
            print(f"  oracle: {p}")
        for label, keys in (("lost", lost), ("wrong version", wrong), ("unexplained", unexplained)):
            for k in keys[:10]:
                print(f"  {label}: {k} expected {sorted(expected.get(k, []))} found {found.get(k)}")
        for n in self.notes:
            print(f"  note: {n}")
        agents = ", ".join(f"{c[-6:]}: {a['runs']} runs / {a['fail']} failed" for c, a in self.agents.items())
        print(f"  agents: {agents}")
        print("  结果 (result): " + ("通过 PASS" if ok else "失败 FAIL") + f"   logs: {W / 'logs'}")
        return ok

    def cleanup(self):
        for s in getattr(self, "svc", {}).values():
            s.stop()
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.W / "dmz" / "data")], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("FLUMON_CAMPAIGN_MINUTES", 10)))
    ap.add_argument("--hospitals", type=int, default=3)
    ap.add_argument("--uploads", type=int, default=4, help="daily upload folders per hospital (each 7 days)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--work", default=str(ROOT / "target" / "campaign"))
    ap.add_argument("--bin-dir", default=os.environ.get("FLUMON_BIN_DIR"),
                    help="folder of the release binaries (then nothing is built); default target/release")
    ap.add_argument("--drain-secs", type=int, default=300)
    ap.add_argument("--recover-secs", type=int, default=90,
                    help="how soon after a full disk the DMZ must answer an upload 200 again")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-disk-full", action="store_true")
    a = ap.parse_args()
    c = Campaign(a)
    c.started_ms = int(time.time() * 1000)
    ok = False
    try:
        c.setup()
        log(f"故障演练开始, {a.minutes} 分钟 (campaign starts)")
        c.campaign()
        c.drain()
        ok = c.check()
    finally:
        c.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
