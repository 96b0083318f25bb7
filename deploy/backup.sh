#!/usr/bin/env bash
# Backup of the DMZ's sled store and of the intranet database (docs/DEPLOY.md «备份与恢复»).
#
#   backup.sh dmz      --config /etc/flumon/dmz/dmz.toml --out DIR [--stop UNIT]
#   backup.sh intranet --config /etc/flumon/intranet/intranet.toml --out DIR
#
#   dmz:      COLD copy. sled has no consistent online snapshot of a live database, so the
#             DMZ must be stopped: with --stop UNIT this script runs `systemctl stop UNIT`,
#             copies, and starts it again (a few seconds; agents keep unsent chunks in their
#             durable queues and retry, so nothing is lost). Without --stop, a running DMZ is
#             detected (sled's flock on data_dir/sled/db) and the backup refused.
#             ─▶ DIR/flumon-dmz-<UTC time>/ data.tar.gz (data_dir: sled/, raw/, audit.jsonl)
#                                            outbox.tar.gz (sealed batches not yet expired)
#   intranet: ONLINE, while the intranet runs.
#             SQLite: the SQLite backup API (`sqlite3 DB ".backup F"`, or Python's sqlite3 module
#             when the sqlite3 program is absent): a consistent copy even in WAL mode.
#             PostgreSQL: pg_dump --format=custom (consistent snapshot) of database_url.
#             ─▶ DIR/flumon-intranet-<UTC time>/ intranet.db | intranet.pgdump, journal.tar.gz
#   Both: SHA256SUMS and info.txt beside the files; the path of the new folder is printed last.
# Needs python3 (reads the TOML configuration), tar, gzip, sha256sum, flock.
set -euo pipefail

die() { echo "错误 (error): $*" >&2; exit 2; }
what="${1:-}"; [[ "$what" == dmz || "$what" == intranet ]] || { sed -n '2,22p' "$0"; exit 2; }
shift
CONFIG="" OUT="" UNIT=""
while (($#)); do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --stop) UNIT="$2"; shift 2 ;;
    *) die "未知参数 (unknown argument) $1" ;;
  esac
done
[[ -f "$CONFIG" && -n "$OUT" ]] || die "需要 --config FILE --out DIR"

# shellcheck source=lib/conf.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conf.sh"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
case "$what" in
dmz)
  data="$(conf paths.data_dir)" outbox="$(conf paths.outbox)" node="$(conf node_id)"
  [[ -d "$data/sled" ]] || die "$data/sled 不存在 (no sled store there)"
  if [[ -n "$UNIT" ]]; then
    systemctl stop "$UNIT"
    trap 'systemctl start "$UNIT"' EXIT
  fi
  flock -n -x "$data/sled/db" true ||
    die "DMZ 正在运行, sled 存储被占用; 先停止它或使用 --stop flumon-dmz (the DMZ is running: stop it first)"
  dest="$OUT/flumon-dmz-$stamp"
  mkdir -p "$dest"
  tar -C "$data" -czf "$dest/data.tar.gz" .
  tar -C "$outbox" -czf "$dest/outbox.tar.gz" .
  {
    echo "kind=dmz"
    echo "node_id=$node"
    echo "time=$stamp"
    echo "data_dir=$data"
    echo "outbox=$outbox"
    echo "files=$(find "$data" -type f | wc -l)"
    echo "bytes=$(du -sb "$data" | cut -f1)"
  } >"$dest/info.txt"
  ;;
intranet)
  url="$(conf database_url)" journal="$(conf paths.journal)"
  dest="$OUT/flumon-intranet-$stamp"
  mkdir -p "$dest"
  case "$url" in
    sqlite://*)
      db="${url#sqlite://}"; db="${db%%\?*}"
      [[ -f "$db" ]] || die "$db 不存在 (no database there)"
      if command -v sqlite3 >/dev/null; then
        sqlite3 "$db" ".backup '$dest/intranet.db'"
      else
        python3 - "$db" "$dest/intranet.db" <<'PY'
import sqlite3, sys
src = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()
PY
      fi
      python3 - "$dest/intranet.db" <<'PY'
import sqlite3, sys
r = sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0]
sys.exit(0 if r == "ok" else "integrity_check: " + r)
PY
      ;;
    postgres://* | postgresql://*)
      command -v pg_dump >/dev/null || die "需要 pg_dump (PostgreSQL client tools)"
      pg_dump --format=custom --no-owner --file="$dest/intranet.pgdump" "$url"
      ;;
    *) die "不支持的 database_url (unsupported): $url" ;;
  esac
  # the journal is append-only: a copy is a prefix of it (a torn last line is recovered on open)
  tar -C "$(dirname "$journal")" -czf "$dest/journal.tar.gz" "$(basename "$journal")"
  {
    echo "kind=intranet"
    echo "time=$stamp"
    echo "database=$(sed -E 's#//[^/@]*@#//@#' <<<"$url")"
    echo "journal=$journal"
  } >"$dest/info.txt"
  ;;
esac
(cd "$dest" && sha256sum -- * >SHA256SUMS)
echo "$dest"
