#!/usr/bin/env bash
# Exercises deploy/backup.sh and deploy/restore.sh on a real DMZ and a real intranet
# (loopback, free ports, no root): run by tests/tests/deploy_backup.rs, which then
# compares the sled trees of the original and the restored store key by key.
#
#   flumon-dmz serve ◀─ agent uploads (synthetic, 1 hospital × 7 days) ─▶ outbox/*.fbatch
#   backup.sh dmz (refused while running) ─▶ stop ─▶ backup.sh dmz ─▶ copy to W/original-data
#   ─▶ destroy data_dir ─▶ restore.sh dmz ─▶ copy to W/restored-data ─▶ serve again: the hospital is known,
#      its agent uploads again with receipts
#   outbox/*.fbatch ─▶ intranet inbound/ ─▶ flumon-intranet serve ─▶ report A
#   backup.sh intranet (ONLINE) ─▶ stop ─▶ destroy the database ─▶ restore.sh intranet (refused while
#   running; --force over a wrong database) ─▶ report B == report A
#
# usage: backup-check.sh WORKDIR       (binaries: $FLUMON_BIN, default target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
W="${1:?WORKDIR}"
B="${FLUMON_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}"
TODAY="$(TZ=Asia/Shanghai date +%F)"
rm -rf "$W"; mkdir -p "$W/logs" "$W/backups"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

fail() { echo "失败 (FAILED): $*" >&2; tail -n 15 "$W"/logs/*.log >&2 || true; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 120); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.5; done
  fail "port $1 not ready"
}
stop_pid() { # pid: SIGTERM, wait for the exit
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  fail "process $1 did not stop"
}
report() {
  "$B/flumon-intranet" report --config "$W/intranet/intranet.toml" --scope 000000 \
    --from "$(TZ=Asia/Shanghai date -d '20 days ago' +%F)" --to "$TODAY" --by week --format json
}

echo "== DMZ: init, serve, one hospital's agent uploads"
"$B/flumon-dmz" init "$W/dmz" >"$W/logs/init.log" 2>&1
PUB="$(free_port)" ADM="$(free_port)"
sed -i -e "s|^public = .*|public = \"127.0.0.1:$PUB\"|" -e "s|^admin = .*|admin = \"127.0.0.1:$ADM\"|" "$W/dmz/dmz.toml"
"$B/flumon-dmz" serve --config "$W/dmz/dmz.toml" >"$W/logs/dmz.log" 2>&1 &
DMZ=$!; PIDS+=("$DMZ")
wait_port "$PUB"; wait_port "$ADM"
"$B/flumon-synth" --seed 11 --hospitals 1 --date "$TODAY" --days 7 --format csv --out "$W/synth" 2>"$W/logs/synth.log"
code="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["code"])' "$W/synth/hospitals.json")"
read -r name region level < <(python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))[0]; print(h["name"], h["region"], h["level"])' "$W/synth/hospitals.json")
token="$("$B/flumon-dmz" admin create-hospital --config "$W/dmz/dmz.toml" --uscc "$code" --name "$name" \
  --region "$region" --level "$level" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
enrol() {
  "$B/flumon-dmz" admin enrol-code --config "$W/dmz/dmz.toml" --uscc "$code" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])'
}
A="$W/agent"
"$B/flumon-agent" enroll --dmz "https://127.0.0.1:$PUB" --uscc "$code" --code "$(enrol)" --ca "$W/dmz/ca/ca.pem" \
  --config-dir "$A" --token "$token" >"$W/logs/agent.log" 2>&1
sed -i -e "s|^folder = \"exports\".*|folder = \"$W/synth/$code/$TODAY\"|" "$A/agent.toml"
"$B/flumon-agent" run --config "$A/agent.toml" --once --attempts 2 >>"$W/logs/agent.log" 2>&1 || fail "agent run"
for _ in $(seq 1 60); do compgen -G "$W/dmz/outbox/*.fbatch" >/dev/null && break; sleep 0.5; done
compgen -G "$W/dmz/outbox/*.fbatch" >/dev/null || fail "no batch in the outbox"

echo "== DMZ: backup refused while it runs, then a cold backup"
if deploy/backup.sh dmz --config "$W/dmz/dmz.toml" --out "$W/backups" 2>"$W/logs/refused.log"; then
  fail "backup.sh dmz accepted a running DMZ"
fi
grep -q "正在运行" "$W/logs/refused.log" || fail "no clear refusal: $(cat "$W/logs/refused.log")"
stop_pid "$DMZ"
dmz_backup="$(deploy/backup.sh dmz --config "$W/dmz/dmz.toml" --out "$W/backups" | tail -1)"
cp -a "$W/dmz/data" "$W/original-data"

echo "== DMZ: destroy, restore"
rm -rf "$W/dmz/data"
deploy/restore.sh dmz --config "$W/dmz/dmz.toml" --from "$dmz_backup"
cp -a "$W/dmz/data" "$W/restored-data"
# a tampered backup is refused
cp -a "$dmz_backup" "$W/tampered"
printf 'x' >>"$W/tampered/data.tar.gz"
deploy/restore.sh dmz --config "$W/dmz/dmz.toml" --from "$W/tampered" --force >/dev/null 2>&1 && fail "a tampered backup was restored"

echo "== DMZ: serves again from the restored store"
flock -w 20 -x "$W/dmz/data/sled/db" true || fail "the restored store stays locked"
"$B/flumon-dmz" serve --config "$W/dmz/dmz.toml" >"$W/logs/dmz2.log" 2>&1 &
DMZ=$!; PIDS+=("$DMZ")
wait_port "$PUB"; wait_port "$ADM"
sleep 0.5
kill -0 "$DMZ" 2>/dev/null || fail "the DMZ did not start on the restored store: $(head -3 "$W/logs/dmz2.log")"
enrol >/dev/null || fail "the restored DMZ does not know hospital $code"
"$B/flumon-agent" run --config "$A/agent.toml" --once --rerun --attempts 2 >>"$W/logs/agent.log" 2>&1 || fail "agent run after restore"
stop_pid "$DMZ"

echo "== 内网 (intranet): ingest the batches, online backup"
"$B/flumon-intranet" init "$W/intranet" --dmz-dir "$W/dmz" >>"$W/logs/init.log" 2>&1
IP="$(free_port)"
sed -i -e "s|^listen = .*|listen = \"127.0.0.1:$IP\"|" -e 's|^poll_seconds = .*|poll_seconds = 1|' "$W/intranet/intranet.toml"
cp "$W"/dmz/outbox/*.fbatch "$W/intranet/inbound/"
"$B/flumon-intranet" serve --config "$W/intranet/intranet.toml" >"$W/logs/intranet.log" 2>&1 &
INTRA=$!; PIDS+=("$INTRA")
wait_port "$IP"
for _ in $(seq 1 120); do compgen -G "$W/intranet/inbound/*.fbatch" >/dev/null || break; sleep 0.5; done
compgen -G "$W/intranet/inbound/*.fbatch" >/dev/null && fail "batches not ingested"
intra_backup="$(deploy/backup.sh intranet --config "$W/intranet/intranet.toml" --out "$W/backups" | tail -1)"
if deploy/restore.sh intranet --config "$W/intranet/intranet.toml" --from "$intra_backup" --force 2>"$W/logs/refused2.log"; then
  fail "restore.sh intranet accepted a running intranet"
fi
stop_pid "$INTRA"
report >"$W/report-before.json"
python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["indicators"]["total"]["cases"]["total"]; sys.exit(0 if int(n) > 0 else "no cases")' \
  "$W/report-before.json" || fail "no cases in the intranet"

echo "== 内网: destroy, restore over a wrong database (--force), compare"
db="$W/intranet/data/intranet.db"
rm -f "$db" "$db-wal" "$db-shm"
python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("CREATE TABLE wrong(x)")' "$db"
deploy/restore.sh intranet --config "$W/intranet/intranet.toml" --from "$intra_backup" 2>/dev/null &&
  fail "restore.sh overwrote a database without --force"
deploy/restore.sh intranet --config "$W/intranet/intranet.toml" --from "$intra_backup" --force
report >"$W/report-after.json"
cmp -s "$W/report-before.json" "$W/report-after.json" || fail "the restored database reports differently"
cases="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["indicators"]["total"]["cases"]["total"])' "$W/report-after.json")"
echo "备份与恢复检查通过 (backup and restore check passed): $cases cases, dmz $(du -sh "$dmz_backup" | cut -f1), intranet $(du -sh "$intra_backup" | cut -f1)"
