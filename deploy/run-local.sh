#!/usr/bin/env bash
# Runs flumon locally on generated keys and synthetic data, as far as the
# system exists: generates a day of uploads for a few hospitals with
# flumon-synth and checks every file with `flumon-agent check`, printing the
# receipts' summary.
#
#   deploy/run-local.sh [WORKDIR]      (default: target/local-run)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-target/local-run}"
DATE="${FLUMON_DATE:-$(date -u +%F)}"
cargo build --release -q -p flumon-agent -p flumon-tests
BIN=target/release
rm -rf "$WORK/uploads"
mkdir -p "$WORK"
echo "== 生成合成数据 (synthetic uploads for $DATE)"
"$BIN/flumon-synth" --seed 42 --hospitals 4 --date "$DATE" --days 7 --format mixed \
  --invalid-rate 0.02 --out "$WORK/uploads"
echo "== flumon-agent check"
total_recv=0; total_acc=0; total_rej=0
while IFS= read -r f; do
  ty="$(basename "$f")"; ty="${ty%%.*}"
  org="$(basename "$(dirname "$(dirname "$f")")")"
  line="$("$BIN/flumon-agent" check --type "$ty" --org "$org" --now "$DATE 02:00:00" "$f" 2>/dev/null)"
  read -r recv acc rej < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["received"], r["accepted"], r["rejected"])' "$line")
  printf '%-70s 收到 %6s  接收 %6s  拒收 %5s\n' "${f#"$WORK/uploads/"}" "$recv" "$acc" "$rej"
  total_recv=$((total_recv + recv)); total_acc=$((total_acc + acc)); total_rej=$((total_rej + rej))
done < <(find "$WORK/uploads" -mindepth 3 -type f \( -name '*.csv' -o -name '*.xlsx' -o -name '*.json' \) | sort)
echo "== 合计 (total): 收到 $total_recv 行, 接收 $total_acc, 拒收 $total_rej"
