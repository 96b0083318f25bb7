#!/usr/bin/env bash
# Publishes the agent program (flumon-agent, Linux x86-64) in the DMZ's download center (下载中心):
# builds it (release profile) unless --binary is given, copies it into the DMZ's data folder
# (downloads/), writes its SM3 digest and an SM2 signature (SM3, distinguishing id
# 1234567812345678, DER) made with the release key that `flumon-dmz init` generated, checks the
# signature, and rewrites downloads/releases.json, which the 下载中心 page lists.
#
#   deploy/release-agent.sh DMZ_DIR [--binary PATH] [--version V] [--date YYYY-MM-DD] [--key KEY.pem]
#
#   DMZ_DIR   the folder `flumon-dmz init` wrote (dmz.toml, keys/release-sign.pem, data/)
#   --binary  a built flumon-agent (default: cargo build --release -p flumon-agent)
#   --key     the release signing key (default DMZ_DIR/keys/release-sign.pem; in production keep it
#             off the DMZ host and run this script where the key is)
#
# Needs: bash, OpenSSL 3 (SM2/SM3), and cargo when building. Hospitals verify with
#   flumon-agent verify-release FILE --sig FILE.sig --pubkey release-sign.pub.pem --sm3 DIGEST
# or
#   openssl pkeyutl -verify -pubin -inkey release-sign.pub.pem -rawin -in FILE -sigfile FILE.sig \
#       -digest sm3 -pkeyopt distid:1234567812345678
set -euo pipefail

die() { echo "release-agent: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 DMZ_DIR [--binary PATH] [--version V] [--date YYYY-MM-DD] [--key KEY.pem]"
dmz_dir=$1; shift
binary= version= date=$(TZ=Asia/Shanghai date +%F) key=
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --date) date=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[ -f "$dmz_dir/dmz.toml" ] || die "$dmz_dir/dmz.toml not found (run flumon-dmz init first)"
key=${key:-$dmz_dir/keys/release-sign.pem}
[ -f "$key" ] || die "release key $key not found"
pub=$dmz_dir/keys/release-sign.pub.pem
[ -f "$pub" ] || die "release public key $pub not found"

if [ -z "$binary" ]; then
  [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "build on Linux x86-64, or pass --binary"
  root=$(cd "$(dirname "$0")/.." && pwd)
  (cd "$root" && cargo build --release -p flumon-agent)
  binary=${CARGO_TARGET_DIR:-$root/target}/release/flumon-agent
fi
[ -f "$binary" ] || die "binary $binary not found"
head -c 4 "$binary" | grep -q $'\x7fELF' || die "$binary is not an ELF program"
if [ -z "$version" ]; then
  version=$("$binary" --version 2>/dev/null | awk '{print $2}')
  [ -n "$version" ] || die "cannot tell the version; pass --version"
fi
case $version in *[!0-9A-Za-z.+-]*|'') die "bad version '$version'" ;; esac

# data_dir from the [paths] table of dmz.toml (relative paths are relative to DMZ_DIR)
data_dir=$(awk -F' *= *' '/^\[/{sect=$0} sect=="[paths]" && $1=="data_dir"{gsub(/"/,"",$2); print $2}' "$dmz_dir/dmz.toml")
[ -n "$data_dir" ] || die "no data_dir in [paths] of dmz.toml"
case $data_dir in /*) ;; *) data_dir=$dmz_dir/$data_dir ;; esac
out=$data_dir/downloads
mkdir -p "$out"

name=flumon-agent-$version-linux-x86_64
# work in a hidden folder beside the final files (same file system: renames are atomic, no extra copy)
tmp=$out/.publish.$$; mkdir -p "$tmp"; trap 'rm -rf "$tmp"' EXIT
cp "$binary" "$tmp/$name"
chmod 0755 "$tmp/$name"
sm3=$(openssl dgst -sm3 -r "$tmp/$name" | awk '{print $1}')
openssl pkeyutl -sign -inkey "$key" -rawin -in "$tmp/$name" -digest sm3 \
  -pkeyopt distid:1234567812345678 -out "$tmp/$name.sig"
openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$tmp/$name" -sigfile "$tmp/$name.sig" \
  -digest sm3 -pkeyopt distid:1234567812345678 >/dev/null || die "the new signature does not verify"
size=$(stat -c %s "$tmp/$name")
printf '{"file":"%s","name":"flumon-agent","version":"%s","date":"%s","size":%s,"sm3":"%s","target":"linux-x86_64"}\n' \
  "$name" "$version" "$date" "$size" "$sm3" > "$tmp/$name.release.json"

# files first (fsynced, renamed into place), then the manifest that lists them
for f in "$name" "$name.sig" "$name.release.json"; do
  sync "$tmp/$f"; mv -f "$tmp/$f" "$out/$f"
done
cp "$pub" "$out/.release-sign.pub.pem.tmp" && mv -f "$out/.release-sign.pub.pem.tmp" "$out/release-sign.pub.pem"
{
  echo "["
  first=1
  for m in $(ls -1t "$out"/*.release.json); do
    [ $first = 1 ] || echo ","
    first=0
    tr -d '\n' < "$m"
  done
  echo
  echo "]"
} > "$out/.releases.json.tmp"
sync "$out/.releases.json.tmp"
mv -f "$out/.releases.json.tmp" "$out/releases.json"
sync "$out"
echo "published $name ($size bytes) SM3 $sm3 in $out"
