#!/usr/bin/env bash
# Restore of a backup made by deploy/backup.sh (docs/DEPLOY.md «备份与恢复»).
#
#   restore.sh dmz      --config /etc/flumon/dmz/dmz.toml --from DIR/flumon-dmz-<time> [--force]
#   restore.sh intranet --config /etc/flumon/intranet/intranet.toml --from DIR/flumon-intranet-<time> [--force]
#
# The program must be stopped (checked: sled's flock on data_dir/sled/db, the journal's flock).
# The checksums in SHA256SUMS are verified first. What is there now is never deleted: with --force
# it is moved aside to <name>.before-restore-<UTC time>; without it a non-empty target is refused.
#   dmz:      data_dir replaced by the backup's; outbox: the backup's batches added where missing
#             (newer batches already in the outbox are kept).
#   intranet: SQLite file replaced (its -wal/-shm moved aside too) and integrity-checked, or
#             pg_restore --clean --if-exists into database_url; the journal restored only when
#             missing (an append-only journal on disk is never older than its backup).
# Running as root, restored files get the owner of the folder they are restored into.
# After restoring an OLDER DMZ backup read docs/DEPLOY.md: batch sequence numbers rewind.
set -euo pipefail

die() { echo "错误 (error): $*" >&2; exit 2; }
what="${1:-}"; [[ "$what" == dmz || "$what" == intranet ]] || { sed -n '2,18p' "$0"; exit 2; }
shift
CONFIG="" FROM="" FORCE=0
while (($#)); do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --from) FROM="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    *) die "未知参数 (unknown argument) $1" ;;
  esac
done
[[ -f "$CONFIG" && -d "$FROM" ]] || die "需要 --config FILE --from BACKUP_DIR"
(cd "$FROM" && sha256sum --quiet -c SHA256SUMS) || die "备份校验失败 (backup checksum mismatch): $FROM"
grep -qx "kind=$what" "$FROM/info.txt" || die "$FROM 不是 $what 的备份 (not a $what backup)"

# shellcheck source=lib/conf.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conf.sh"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
aside() { # path: move it aside (with --force) or refuse when it holds anything
  [[ -e "$1" ]] || return 0
  if [[ -d "$1" && -z "$(ls -A "$1")" ]]; then rmdir "$1"; return 0; fi
  [[ "$FORCE" == 1 ]] || die "$1 不为空; 用 --force 把它移到一旁 (not empty; --force moves it aside)"
  mv "$1" "$1.before-restore-$stamp"
  echo "已移到一旁 (moved aside): $1.before-restore-$stamp"
}
own_like_parent() { # path
  [[ "$(id -u)" == 0 ]] && chown -R --reference="$(dirname "$1")" "$1" || true
}

case "$what" in
dmz)
  data="$(conf paths.data_dir)" outbox="$(conf paths.outbox)"
  node="$(conf node_id)"
  grep -qx "node_id=$node" "$FROM/info.txt" || die "备份来自另一个节点 (the backup is of another node than $node)"
  if [[ -e "$data/sled/db" ]]; then
    flock -n -x "$data/sled/db" true || die "DMZ 正在运行; 先停止它 (the DMZ is running: stop it first)"
  fi
  aside "$data"
  mkdir -p "$data"
  tar -C "$data" -xzf "$FROM/data.tar.gz"
  own_like_parent "$data"
  mkdir -p "$outbox"
  tar -C "$outbox" --skip-old-files -xzf "$FROM/outbox.tar.gz"
  echo "已恢复 DMZ 存储 (DMZ store restored): $data ($(find "$data" -type f | wc -l) files)"
  ;;
intranet)
  url="$(conf database_url)" journal="$(conf paths.journal)"
  if [[ -e "$journal" ]]; then
    flock -n -x "$journal" true || die "内网服务正在运行; 先停止它 (the intranet is running: stop it first)"
  fi
  case "$url" in
    sqlite://*)
      db="${url#sqlite://}"; db="${db%%\?*}"
      [[ -f "$FROM/intranet.db" ]] || die "备份中没有 intranet.db (no SQLite database in the backup)"
      for f in "$db-wal" "$db-shm"; do [[ -e "$f" ]] && { [[ "$FORCE" == 1 ]] || die "$f exists; --force"; mv "$f" "$f.before-restore-$stamp"; }; done
      aside "$db"
      mkdir -p "$(dirname "$db")"
      cp "$FROM/intranet.db" "$db.restoring"
      python3 - "$db.restoring" <<'PY'
import sqlite3, sys
r = sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0]
sys.exit(0 if r == "ok" else "integrity_check: " + r)
PY
      mv "$db.restoring" "$db"
      [[ "$(id -u)" == 0 ]] && chown --reference="$(dirname "$db")" "$db" || true
      ;;
    postgres://* | postgresql://*)
      [[ -f "$FROM/intranet.pgdump" ]] || die "备份中没有 intranet.pgdump (no PostgreSQL dump in the backup)"
      pg_restore --clean --if-exists --no-owner --single-transaction --dbname="$url" "$FROM/intranet.pgdump"
      ;;
    *) die "不支持的 database_url (unsupported): $url" ;;
  esac
  if [[ ! -e "$journal" ]]; then
    mkdir -p "$(dirname "$journal")"
    tar -C "$(dirname "$journal")" -xzf "$FROM/journal.tar.gz"
    own_like_parent "$journal"
    echo "已恢复日志 (journal restored): $journal"
  fi
  echo "已恢复内网数据库 (intranet database restored)"
  ;;
esac
