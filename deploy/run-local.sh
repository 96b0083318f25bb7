#!/usr/bin/env bash
# Runs the whole of flumon locally on loopback, all zones, on the embedded
# defaults: generated keys and certificates, sled in the DMZ, SQLite in the
# intranet, the one-way link as UDP + RaptorQ on 127.0.0.1.
#
#   hospital agents ─HTTPS─▶ flumon-dmz ─outbox─▶ flumon-transfer send ═UDP═▶ recv ─spool─▶ flumon-intranet
#
#   deploy/run-local.sh            start everything, upload 30 days of synthetic data, print URLs
#   deploy/run-local.sh --check    the same, then verify the cases reached the intranet and stop (CI)
#   deploy/run-local.sh stop       stop what a previous run started
#
# Work folder: $FLUMON_LOCAL_DIR (default target/local-run), wiped at each start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
W="${FLUMON_LOCAL_DIR:-$ROOT/target/local-run}"
# FLUMON_PROFILE=dev uses the debug build (CI: `cargo test` has just built it); default release.
PROFILE="${FLUMON_PROFILE:-release}"
case "$PROFILE" in
  release) B="${CARGO_TARGET_DIR:-$ROOT/target}/release"; BUILD_FLAGS=(--release) ;;
  dev) B="${CARGO_TARGET_DIR:-$ROOT/target}/debug"; BUILD_FLAGS=() ;;
  *) echo "FLUMON_PROFILE 只能是 release 或 dev (must be release or dev): $PROFILE" >&2; exit 2 ;;
esac
HOSPITALS="${FLUMON_LOCAL_HOSPITALS:-3}"
TODAY="$(TZ=Asia/Shanghai date +%F)"

stop() {
  if [[ -f "$W/pids" ]]; then
    while read -r pid name; do
      kill "$pid" 2>/dev/null && echo "已停止 (stopped) $name" || true
    done < "$W/pids"
    rm -f "$W/pids"
  fi
}

wait_port() { # host port seconds
  for _ in $(seq 1 "$3"); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 1
  done
  echo "端口 $1:$2 未就绪 (port not ready); 见 $W/logs" >&2
  return 1
}

start() { # name logfile command...
  local name="$1" log="$2"; shift 2
  "$@" >"$log" 2>&1 &
  echo "$! $name" >> "$W/pids"
}

if [[ "${1:-}" == "stop" ]]; then stop; exit 0; fi
CHECK=0
[[ "${1:-}" == "--check" ]] && CHECK=1

stop
echo "== 构建 (building, $PROFILE)"
cargo build "${BUILD_FLAGS[@]}" -q -p flumon-dmz -p flumon-transfer -p flumon-intranet -p flumon-agent -p flumon-tests
rm -rf "$W"; mkdir -p "$W/logs"

echo "== 生成密钥与配置 (keys and configuration)"
"$B/flumon-dmz" init "$W/dmz" >"$W/logs/init.log" 2>&1
"$B/flumon-transfer" init --dmz-dir "$W/dmz" --out "$W/transfer" >>"$W/logs/init.log" 2>&1
"$B/flumon-intranet" init "$W/intranet" --dmz-dir "$W/dmz" >>"$W/logs/init.log" 2>&1
# The receiver's spool is the intranet's inbound folder.
sed -i "s|^spool = \"inbound\"|spool = \"$W/transfer/spool\"|" "$W/intranet/intranet.toml"

# The first analyst (national scope); the admin CLI writes the intranet's
# journal, so it runs before the server holds it.
activation="$("$B/flumon-intranet" admin create-user --config "$W/intranet/intranet.toml" --name analyst \
  --role analyst --scope 000000 2>>"$W/logs/init.log" | tail -1 | awk "{print \$NF}")"
# --check logs in as a second analyst, so the first one's code stays unused for a person.
if [[ "$CHECK" == 1 ]]; then
  check_code="$("$B/flumon-intranet" admin create-user --config "$W/intranet/intranet.toml" --name check \
    --role analyst --scope 000000 2>>"$W/logs/init.log" | tail -1 | awk "{print \$NF}")"
fi

echo "== 启动各区 (starting the zones)"
start flumon-dmz "$W/logs/dmz.log" "$B/flumon-dmz" serve --config "$W/dmz/dmz.toml"
start flumon-transfer-recv "$W/logs/recv.log" "$B/flumon-transfer" recv --config "$W/transfer/recv.toml"
start flumon-transfer-send "$W/logs/send.log" "$B/flumon-transfer" send --config "$W/transfer/send.toml"
start flumon-intranet "$W/logs/intranet.log" "$B/flumon-intranet" serve --config "$W/intranet/intranet.toml"
wait_port 127.0.0.1 8443 30
wait_port 127.0.0.1 9443 30

echo "== 合成数据: $HOSPITALS 家医院最近 30 天 (synthetic uploads)"
# --plant-ids: identifiers in every free-text field, for the leak check of --check.
"$B/flumon-synth" --seed 42 --hospitals "$HOSPITALS" --date "$TODAY" --days 30 --format mixed \
  --invalid-rate 0.01 --plant-ids --out "$W/synth" 2>"$W/logs/synth.log"

echo "== 医院注册与前置机上传 (hospitals and their agents)"
python3 - "$W/synth/hospitals.json" > "$W/hospitals.tsv" <<'PY'
import json, sys
for h in json.load(open(sys.argv[1])):
    print("\t".join([h["code"], h["name"], h["region"], str(h["level"])]))
PY
first_hospital=""; first_link=""
while IFS=$'\t' read -r code name region level; do
  [[ -z "$first_hospital" ]] && first_hospital="$code"
  "$B/flumon-dmz" admin create-hospital --config "$W/dmz/dmz.toml" --uscc "$code" --name "$name" \
    --region "$region" --level "$level" > "$W/dmz-$code.json"
  read -r token link < <(python3 - "$W/dmz-$code.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); print(j["token"], j.get("activation_url") or "-")
PY
)
  [[ -z "$first_link" ]] && first_link="$link"
  first_name="${first_name:-$name}"
  code_json="$("$B/flumon-dmz" admin enrol-code --config "$W/dmz/dmz.toml" --uscc "$code")"
  enrol="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["code"])' "$code_json")"
  A="$W/agents/$code"
  "$B/flumon-agent" enroll --dmz https://127.0.0.1:8443 --uscc "$code" --code "$enrol" \
    --ca "$W/dmz/ca/ca.pem" --config-dir "$A" --token "$token" >>"$W/logs/agents.log" 2>&1
  sed -i -e "s|^folder = \"exports\".*|folder = \"$W/synth/$code/$TODAY\"\ndays = 30|" "$A/agent.toml"
  "$B/flumon-agent" run --config "$A/agent.toml" --once >>"$W/logs/agents.log" 2>&1
  echo "  $name ($code): 已上传 (uploaded)"
done < "$W/hospitals.tsv"

if [[ "$CHECK" == 1 ]]; then
  # The input paths the agents do not use, each with identifiers of its own (the leak check below):
  # the web page's upload file name, file-name headers and query of the agent API, and a death
  # scan's file name, metadata fields and content. Uses the first hospital's web account.
  echo "== 植入标识符 (planting identifiers through the web page, the API and the scans endpoint)"
  python3 "$ROOT/deploy/lib/plant_inputs.py" send --dmz https://127.0.0.1:8443 --ca "$W/dmz/ca/ca.pem" \
    --agent-dir "$W/agents/$first_hospital" --activation-url "$first_link" --uscc "$first_hospital" \
    --files "$W/synth/$first_hospital/$TODAY" --out "$W/planted.json"
  first_link="(已用于检查 used by the check)"
fi

echo "== 等待数据穿过单向网闸进入内网 (waiting for the batches to cross the gate)"
cases=0
for _ in $(seq 1 120); do
  cases="$("$B/flumon-intranet" report --config "$W/intranet/intranet.toml" --scope 000000 \
    --from "$(TZ=Asia/Shanghai date -d '40 days ago' +%F)" --to "$TODAY" --by season --format json 2>/dev/null \
    | python3 -c 'import json,sys
try:
    print(int(json.load(sys.stdin)["indicators"]["total"]["cases"]["total"]))
except Exception:
    print(0)' || echo 0)"
  [[ "$cases" -gt 0 ]] && break
  sleep 2
done

echo
echo "内网已收到病例 (cases in the intranet): $cases"
echo "内网 (intranet):  https://127.0.0.1:9443/   分析员 analyst, 激活码 (activation): $activation"
echo "                  (首次登录: https://127.0.0.1:9443/activate 用户名 analyst + 激活码, 设置密码并用身份验证器扫描二维码)"
echo "DMZ 上报页面:     https://127.0.0.1:8443/   医院 $first_name 用户名 (login) $first_hospital"
echo "                  首次设置密码与 TOTP (activation link, 72 h): $first_link"
echo "                  审核 (review, admin listener): https://127.0.0.1:8444/"
echo "TLS 证书 (CA):    内网 $W/intranet/tls/server.pem   DMZ $W/dmz/ca/ca.pem"
echo "医院前置机配置:   $W/agents/<代码>/agent.toml   日志 (logs): $W/logs"
echo "停止 (stop):      deploy/run-local.sh stop"
if [[ "$CHECK" == 1 ]]; then
  ok=1
  [[ "$cases" -gt 0 ]] || { echo "失败: 内网没有收到病例 (no cases reached the intranet)" >&2; ok=0; }
  # What an analyst sees: log in (password + TOTP) and read the dashboard page against the API.
  if [[ "$ok" == 1 ]] && ! python3 "$ROOT/deploy/lib/check_dashboard.py" --url https://127.0.0.1:9443 \
      --ca "$W/intranet/tls/server.pem" --name check --code "$check_code" --to "$TODAY"; then
    ok=0
  fi
  # Invariant 2: nothing identifying crossed the gate or reached a log (INTERFACE §5). First the
  # planted uploads must have reached the intranet; then, with every process stopped (logs and
  # database final), the batches are decrypted the intranet's way and everything is searched.
  if [[ "$ok" == 1 ]] && ! python3 "$ROOT/deploy/lib/plant_inputs.py" await --planted "$W/planted.json" \
      --db "$W/intranet/data/intranet.db"; then
    ok=0
  fi
  stop
  if [[ "$ok" == 1 ]] && ! "$B/flumon-batch-dump" --link-key "$W/intranet/keys/link.key" \
      --dmz-pub "$W/intranet/keys/dmz-sign.pub.pem" --out "$W/batches" \
      "$W/transfer/spool" "$W/transfer/quarantine" "$W/dmz/outbox" >/dev/null; then
    ok=0
  fi
  if [[ "$ok" == 1 ]] && ! python3 "$ROOT/deploy/lib/check_leaks.py" --uploads "$W/synth" \
      --planted "$W/planted.json" --batches "$W/batches" --search "$W/intranet" --search "$W/transfer" \
      --search "$W/logs/intranet.log" --search "$W/logs/recv.log" --search "$W/logs/send.log" \
      --search "$W/logs/dmz.log" --search "$W/logs/agents.log" --search "$W/logs/init.log" \
      --search "$W/dmz/data/audit.jsonl" --search "$W/dmz/mail-outbox"; then
    ok=0
  fi
  [[ "$ok" == 1 ]] || exit 1
  echo "检查通过 (check passed)"
fi
