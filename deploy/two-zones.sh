#!/usr/bin/env bash
# The whole of flumon across two network namespaces joined by the one-way link
# of deploy/netns-link.sh: DMZ and sender in one zone, receiver and intranet in
# the other, nothing routed back (nftables drops every packet the intranet
# zone sends over the link, and ARP). Keys come from deploy/keygen-production.sh
# and the configuration from the templates of deploy/config/, as in a real
# deployment; only addresses and folders are changed for the namespaces.
#
#   zone fz-dmz (192.0.2.1)                              zone fz-intra (192.0.2.2)
#   agents ─HTTPS 127.0.0.1:8443─▶ flumon-dmz ─outbox─▶ send ══UDP══▶ recv ─spool─▶ flumon-intranet 127.0.0.1:9443
#                                                      ◀── ✗ (dropped: reverse_dropped counter)
#
#   deploy/two-zones.sh            set up, upload 30 days of synthetic data, keep running, print how to stop
#   deploy/two-zones.sh --check    2 hospitals × 7 days, check the intranet API shows the cases and that
#                                  nothing crosses back, then stop (CI; bounded by FLUMON_ZONES_TIMEOUT s, 150)
#   deploy/two-zones.sh stop       stop a previous run and remove the namespaces
#
# Needs root, iproute2, nftables, openssl, python3 (exit 77 with a message when something is missing).
# Binaries: $FLUMON_BIN (default: debug build under $CARGO_TARGET_DIR or target/, built with cargo).
# Work folder: $FLUMON_ZONES_DIR (default target/two-zones), wiped at each start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
W="${FLUMON_ZONES_DIR:-$ROOT/target/two-zones}"
NAME="${FLUMON_ZONES_NAME:-fz}"
LINK="$ROOT/deploy/netns-link.sh"
TODAY="$(TZ=Asia/Shanghai date +%F)"
TIMEOUT="${FLUMON_ZONES_TIMEOUT:-150}"

skip() { echo "跳过 (SKIPPED): $*" >&2; exit 77; }

stop() {
  if [[ -f "$W/pids" ]]; then
    while read -r pid name; do
      kill "$pid" 2>/dev/null && echo "已停止 (stopped) $name" || true
    done <"$W/pids"
    sleep 1
    while read -r pid _; do kill -9 "$pid" 2>/dev/null || true; done <"$W/pids"
    rm -f "$W/pids"
  fi
  "$LINK" down "$NAME" 2>/dev/null || true
}

if [[ "${1:-}" == "stop" ]]; then stop; exit 0; fi
CHECK=0
[[ "${1:-}" == "--check" ]] && CHECK=1

[[ "$(id -u)" == 0 ]] || skip "需要 root 以建立网络命名空间 (root is needed for network namespaces)"
for t in ip nft openssl python3; do command -v "$t" >/dev/null || skip "缺少 $t (missing $t)"; done
ip netns list >/dev/null 2>&1 || skip "内核不支持网络命名空间 (no network namespaces)"

if [[ -n "${FLUMON_BIN:-}" ]]; then
  B="$FLUMON_BIN"
else
  B="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
  echo "== 构建 (building, debug)"
  cargo build -q -p flumon-dmz -p flumon-transfer -p flumon-intranet -p flumon-agent -p flumon-vault -p flumon-tests --bins
fi

stop
rm -rf "$W"; mkdir -p "$W/logs"
START=$(date +%s)
trap 'rc=$?; if [[ $CHECK == 1 || $rc != 0 ]]; then stop; fi; exit $rc' EXIT

in_dmz() { "$LINK" dmz "$NAME" "$@"; }
in_intra() { "$LINK" intra "$NAME" "$@"; }
start() { # zone name log command...
  local zone="$1" name="$2" log="$3"; shift 3
  "$LINK" "$zone" "$NAME" "$@" >"$log" 2>&1 &
  echo "$! $name" >>"$W/pids"
}
wait_port() { # zone host port
  for _ in $(seq 1 60); do
    "$LINK" "$1" "$NAME" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "端口 $2:$3 ($1) 未就绪 (port not ready); 见 $W/logs" >&2
  tail -5 "$W"/logs/*.log >&2
  return 1
}

echo "== 单向链路 (one-way link) $NAME-dmz ─▶ $NAME-intra"
"$LINK" up "$NAME"

echo "== 密钥: 离线保管库, DMZ, 内网 (keys as in production: keygen-production.sh)"
D="$W/dmzhost" I="$W/intrahost"
printf 'two-zones-vault-passphrase\n' >"$W/vault.pass"
"$B/flumon-vault" keygen --out "$W/vault" --passphrase-file "$W/vault.pass" --kdf-mib 8 --kdf-passes 1 >"$W/logs/keys.log" 2>&1
deploy/keygen-production.sh dmz --root "$D" --bin "$B" --vault-pubkey "$W/vault/vault.pub.pem" \
  --hostname 127.0.0.1,localhost --bundle "$W/bundle" >>"$W/logs/keys.log" 2>&1
deploy/keygen-production.sh intranet --root "$I" --bin "$B" --bundle "$W/bundle" --hostname 127.0.0.1,localhost \
  >>"$W/logs/keys.log" 2>&1
rm -rf "$W/bundle"

echo "== 配置: 模板, 只改地址与目录 (the templates; only addresses and folders changed)"
E="$D/etc/flumon" F="$I/etc/flumon"
sed -i -e "s|/var/lib/flumon|$D/var/lib/flumon|g" -e 's|^public = .*|public = "127.0.0.1:8443"|' \
  -e 's|^admin = .*|admin = "127.0.0.1:8444"|' -e '/^smtp_relay = /d' \
  -e 's|^public_url = .*|public_url = "https://127.0.0.1:8443"|' -e 's|^admin_url = .*|admin_url = "https://127.0.0.1:8444"|' \
  "$E/dmz/dmz.toml"
sed -i -e "s|/var/lib/flumon|$D/var/lib/flumon|g" "$E/send/send.toml"
sed -i -e "s|/var/lib/flumon|$I/var/lib/flumon|g" "$F/recv/recv.toml"
sed -i -e "s|/var/lib/flumon|$I/var/lib/flumon|g" -e 's|^listen = .*|listen = "127.0.0.1:9443"|' "$F/intranet/intranet.toml"
mkdir -p "$D"/var/lib/flumon/{dmz/data,dmz/mail-outbox,outbox,send/state,send/ferry} \
  "$I"/var/lib/flumon/{spool,recv/state,recv/quarantine,recv/ferry,intranet/journal}

activation="$("$B/flumon-intranet" admin create-user --config "$F/intranet/intranet.toml" --name analyst \
  --role analyst --scope 000000 2>>"$W/logs/keys.log" | tail -1 | awk '{print $NF}')"

echo "== 启动: DMZ 区 (flumon-dmz, send), 内网区 (recv, flumon-intranet)"
start intra flumon-transfer-recv "$W/logs/recv.log" "$B/flumon-transfer" recv --config "$F/recv/recv.toml"
start intra flumon-intranet "$W/logs/intranet.log" "$B/flumon-intranet" serve --config "$F/intranet/intranet.toml"
start dmz flumon-dmz "$W/logs/dmz.log" "$B/flumon-dmz" serve --config "$E/dmz/dmz.toml"
start dmz flumon-transfer-send "$W/logs/send.log" "$B/flumon-transfer" send --config "$E/send/send.toml"
wait_port dmz 127.0.0.1 8443
wait_port dmz 127.0.0.1 8444
wait_port intra 127.0.0.1 9443

if [[ "$CHECK" == 1 ]]; then HOSPITALS=2 DAYS=7; else HOSPITALS="${FLUMON_ZONES_HOSPITALS:-3}" DAYS=30; fi
echo "== 合成数据: $HOSPITALS 家医院最近 $DAYS 天 (synthetic data)"
"$B/flumon-synth" --seed 7 --hospitals "$HOSPITALS" --date "$TODAY" --days "$DAYS" --format mixed \
  --invalid-rate 0.01 --out "$W/synth" 2>"$W/logs/synth.log"

echo "== 医院注册, 前置机注册与上传 (in the DMZ zone)"
python3 -c 'import json,sys
for h in json.load(open(sys.argv[1])): print("\t".join([h["code"], h["name"], h["region"], str(h["level"])]))' \
  "$W/synth/hospitals.json" >"$W/hospitals.tsv"
while IFS=$'\t' read -r code name region level; do
  created="$(in_dmz "$B/flumon-dmz" admin create-hospital --config "$E/dmz/dmz.toml" --uscc "$code" --name "$name" \
    --region "$region" --level "$level")"
  token="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$created")"
  enrol="$(in_dmz "$B/flumon-dmz" admin enrol-code --config "$E/dmz/dmz.toml" --uscc "$code" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')"
  A="$W/agents/$code"
  in_dmz "$B/flumon-agent" enroll --dmz https://127.0.0.1:8443 --uscc "$code" --code "$enrol" \
    --ca "$E/dmz/ca/ca.pem" --config-dir "$A" --token "$token" >>"$W/logs/agents.log" 2>&1
  sed -i -e "s|^folder = \"exports\".*|folder = \"$W/synth/$code/$TODAY\"\ndays = $DAYS|" "$A/agent.toml"
  in_dmz "$B/flumon-agent" run --config "$A/agent.toml" --once >>"$W/logs/agents.log" 2>&1
  echo "  $name ($code): 已上传 (uploaded)"
done <"$W/hospitals.tsv"

echo "== 等待批次穿过单向链路 (waiting for the batches to cross)"
cases=0
while (($(date +%s) - START < TIMEOUT)); do
  cases="$(in_intra "$B/flumon-intranet" report --config "$F/intranet/intranet.toml" --scope 000000 \
    --from "$(TZ=Asia/Shanghai date -d "$((DAYS + 10)) days ago" +%F)" --to "$TODAY" --by season --format json \
    2>/dev/null | python3 -c 'import json,sys
try: print(int(json.load(sys.stdin)["indicators"]["total"]["cases"]["total"]))
except Exception: print(0)' || echo 0)"
  [[ "$cases" -gt 0 ]] && break
  sleep 2
done
echo "内网数据库中的病例 (cases in the intranet database): $cases"

echo "== 内网 API: 分析员激活, TOTP 登录, GET /api/v1/indicators (in the intranet zone)"
api_cases="$(in_intra python3 - "$F/intranet/tls/server.pem" "$activation" "$DAYS" <<'PY'
import base64, hashlib, hmac, json, ssl, struct, sys, time, urllib.request
from datetime import date, timedelta
ca, code, days = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
base = "https://127.0.0.1:9443/api/v1"
def call(path, body=None, token=None):
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    if token: req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return json.load(r)
def totp(secret, step):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)
pw = "Zones-Check-2026!"
secret = call("/auth/activate", {"name": "analyst", "code": code, "password": pw})["totp_secret"]
step = int(time.time()) // 30
call("/auth/confirm", {"name": "analyst", "code": code, "totp": totp(secret, step)})
token = call("/auth/login", {"name": "analyst", "password": pw, "totp": totp(secret, step + 1)})["token"]
today = date.today()
q = "/indicators?scope=000000&by=season&from=%s&to=%s" % (today - timedelta(days=days + 10), today + timedelta(days=1))
print(call(q, token=token)["total"]["cases"]["total"])
PY
)" || api_cases=0
echo "内网 API 显示的病例 (cases the intranet API shows): $api_cases"

echo "== 反向隔离 (nothing crosses back)"
# a UDP datagram and a TCP connection from the intranet zone to the DMZ zone must both vanish
in_dmz python3 -c 'import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("192.0.2.1",40999)); s.settimeout(4)
try: s.recvfrom(100); print("received")
except socket.timeout: print("nothing")' >"$W/reverse-udp.txt" &
lpid=$!
sleep 0.5
in_intra python3 -c 'import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
for _ in range(3): s.sendto(b"back", ("192.0.2.1", 40999))' 2>/dev/null || true
reverse_tcp="$(in_intra timeout 3 bash -c 'exec 3<>/dev/tcp/192.0.2.1/8443 && echo connected' 2>/dev/null || echo refused)"
wait "$lpid" || true
reverse_udp="$(cat "$W/reverse-udp.txt")"
counters="$("$LINK" counters "$NAME")"
echo "反向 UDP: $reverse_udp, 反向 TCP: $reverse_tcp, 计数 (counters): $counters"
echo "用时 (elapsed): $(($(date +%s) - START)) s"

if [[ "$CHECK" == 1 ]]; then
  fail=0
  [[ "$cases" -gt 0 ]] || { echo "失败: 内网数据库没有病例 (no cases reached the intranet)" >&2; fail=1; }
  [[ "$api_cases" =~ ^[0-9]+$ && "$api_cases" -gt 0 ]] || { echo "失败: 内网 API 没有显示病例 (the API shows no cases)" >&2; fail=1; }
  [[ "$reverse_udp" == nothing && "$reverse_tcp" == refused ]] || { echo "失败: 有数据反向穿过链路 (something crossed back)" >&2; fail=1; }
  rev="$(awk '{print $4}' <<<"$counters")"
  [[ "$rev" -ge 3 ]] || { echo "失败: 反向丢弃计数 $rev < 3 (reverse drops not counted)" >&2; fail=1; }
  if [[ $fail == 1 ]]; then tail -n 20 "$W"/logs/*.log >&2; exit 1; fi
  echo "检查通过 (check passed)"
  exit 0
fi
trap - EXIT
echo "内网 (intranet, zone $NAME-intra): https://127.0.0.1:9443/  — ip netns exec $NAME-intra …"
echo "DMZ (zone $NAME-dmz): https://127.0.0.1:8443/   日志 (logs): $W/logs"
echo "停止 (stop): deploy/two-zones.sh stop"
