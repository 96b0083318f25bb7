#!/usr/bin/env bash
# Key and certificate generation for a real flumon deployment, one host role
# at a time, with the programs' own init commands (deploy/keys.md explains
# which host gets which key, and which never may).
#
#   离线工作站 offline workstation      DMZ 主机 DMZ host                      内网一侧 intranet side
#   keygen-production.sh vault ─vault.pub.pem─▶ keygen-production.sh dmz ─link bundle─▶ keygen-production.sh intranet
#   vault.key / share-*.key (stay)     dmz/ (all DMZ keys), send/              recv/, intranet/
#                                      bundle: link.key link-mac.key dmz-sign.pub.pem  (removable medium, then wiped)
#
# usage:
#   keygen-production.sh vault    --out DIR [--shares N --threshold M]
#   keygen-production.sh dmz      --vault-pubkey FILE --hostname NAMES --bundle DIR [--node-id ID]
#   keygen-production.sh intranet --bundle DIR --hostname NAMES
#   NAMES: the TLS server certificate's names and addresses, comma-separated, first = CN. For the DMZ:
#   the public name AND the admin listener's address (the operator CLI checks it), e.g. report.example.cn,10.0.0.5
# options: --root DIR   install under DIR instead of / (a staging tree; tests use it)
#          --bin DIR    where the flumon-* programs are (default: PATH)
# Installs the templates of deploy/config/ (edit addresses and node_id afterwards), never
# overwrites an existing file, chowns to the service groups when they exist (deploy/systemd/flumon.sysusers.conf).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

die() { echo "错误 (error): $*" >&2; exit 2; }
role="${1:-}"; [[ -n "$role" ]] || { sed -n '2,20p' "$0"; exit 2; }
shift
ROOT="" BIN="" OUT="" SHARES="" THRESHOLD="" VPUB="" HOSTNAME_="" BUNDLE="" NODE_ID="dmz-1"
while (($#)); do
  case "$1" in
    --root) ROOT="${2%/}"; shift 2 ;;
    --bin) BIN="$2/"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --shares) SHARES="$2"; shift 2 ;;
    --threshold) THRESHOLD="$2"; shift 2 ;;
    --vault-pubkey) VPUB="$2"; shift 2 ;;
    --hostname) HOSTNAME_="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    --node-id) NODE_ID="$2"; shift 2 ;;
    *) die "未知参数 (unknown argument) $1" ;;
  esac
done
E="$ROOT/etc/flumon"
command -v openssl >/dev/null || die "需要 openssl (openssl is needed for the TLS certificates)"

# A TLS server key (P-256, PKCS#8) and certificate for NAMES (comma-separated names/IPs): signed by CA/CAKEY, or self-signed without them.
tls_cert() { # dir name [ca cakey]
  local d="$1" names="$2" san="" n name
  IFS=, read -ra n <<<"$names"
  name="${n[0]}"
  for x in "${n[@]}"; do
    if [[ "$x" =~ ^[0-9.]+$ || "$x" == *:* ]]; then san+="${san:+,}IP:$x"; else san+="${san:+,}DNS:$x"; fi
  done
  rm -f "$d/server.pem" "$d/server.key"
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/server.key" 2>/dev/null)
  local ext; ext="$(mktemp)"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$san" >"$ext"
  if [[ $# -ge 4 ]]; then
    openssl req -new -key "$d/server.key" -subj "/CN=$name" 2>/dev/null |
      openssl x509 -req -CA "$3" -CAkey "$4" -CAcreateserial -CAserial "$d/.srl" -days 825 -sha256 \
        -extfile "$ext" -out "$d/server.pem" 2>/dev/null
    rm -f "$d/.srl"
  else
    openssl req -x509 -new -key "$d/server.key" -subj "/CN=$name" -days 825 -sha256 \
      -addext "subjectAltName=$san" -addext "extendedKeyUsage=serverAuth" -out "$d/server.pem" 2>/dev/null
  fi
  rm -f "$ext"
}

# Owner root, group GROUP (when it exists), dirs 0750, secrets 0640, public files 0644.
own() { # dir group
  local d="$1" g="$2"
  if getent group "$g" >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then chown -R "root:$g" "$d"; fi
  find "$d" -type d -exec chmod 0750 {} +
  find "$d" -type f -exec chmod 0640 {} +
  find "$d" -type f \( -name '*.pub.pem' -o -name 'ca.pem' -o -name 'server.pem' -o -name '*.toml' \) -exec chmod 0644 {} +
}

template() { # name dest
  [[ -e "$2" ]] && { echo "  保留已有 (kept) $2"; return; }
  sed "s/^node_id = \"dmz-1\"/node_id = \"$NODE_ID\"/" "$HERE/config/$1" >"$2"
  echo "  模板 (template) $2 — 请修改地址 (edit the addresses)"
}

fingerprints() { # dir
  (cd "$1" && sha256sum keys/link.key keys/link-mac.key keys/dmz-sign.pub.pem)
}

case "$role" in
vault)
  [[ -n "$OUT" ]] || die "vault 需要 --out DIR"
  args=(keygen --out "$OUT")
  [[ -n "$SHARES" ]] && args+=(--shares "$SHARES" --threshold "${THRESHOLD:?--threshold M}")
  "${BIN}flumon-vault" "${args[@]}"
  echo "保管库私钥留在本离线工作站 (the private key stays on this offline workstation): $OUT"
  echo "把 $OUT/vault.pub.pem (公钥) 带到 DMZ: keygen-production.sh dmz --vault-pubkey vault.pub.pem"
  ;;

dmz)
  [[ -n "$VPUB" && -n "$HOSTNAME_" && -n "$BUNDLE" ]] || die "dmz 需要 --vault-pubkey --hostname --bundle"
  [[ -e "$E/dmz/dmz.toml" ]] && die "$E/dmz/dmz.toml 已存在 (exists): 不重新生成密钥 (keys are never regenerated over)"
  mkdir -p "$E"
  echo "== DMZ: flumon-dmz init (CA, 链路密钥, 签名密钥, 脱敏密钥, 运维凭据)"
  "${BIN}flumon-dmz" init "$E/dmz" --vault-pubkey "$VPUB"
  [[ -e "$E/dmz/vault-DEMO-ONLY" ]] && die "不应出现演示保管库密钥 (a demo vault key must not exist)"
  # init's dmz.toml is for loopback; the production template replaces it, data lives under /var/lib
  mv "$E/dmz/dmz.toml" "$E/dmz/dmz.toml.init"
  rmdir "$E/dmz/outbox" "$E/dmz/mail-outbox"
  # init put the release public key where the download center serves it (data_dir/downloads/)
  mkdir -p "$ROOT/var/lib/flumon/dmz/data"
  cp -rn "$E/dmz/data/." "$ROOT/var/lib/flumon/dmz/data/"
  rm -rf "$E/dmz/data"
  template dmz.toml "$E/dmz/dmz.toml"
  echo "== DMZ: TLS 服务器证书 $HOSTNAME_ (由 DMZ CA 签发; 或换成正式 CA 的证书)"
  tls_cert "$E/dmz/tls" "$HOSTNAME_" "$E/dmz/ca/ca.pem" "$E/dmz/ca/ca.key"
  # the web review key ([web] review_key): made now, since /etc is read-only to the service
  (umask 077; printf -- '-----BEGIN FLUMON SM4 KEY-----\n%s\n-----END FLUMON SM4 KEY-----\n' \
    "$(openssl rand -hex 16)" >"$E/dmz/keys/review.key")

  echo "== 发送端 (sender): 自己的日志密钥, DMZ 公钥和 MAC 密钥的副本"
  t="$(mktemp -d)"
  "${BIN}flumon-transfer" init --dmz-dir "$E/dmz" --out "$t/tr" >/dev/null
  mkdir -p "$E/send/keys"
  cp "$t/tr/keys/send-journal.pem" "$t/tr/keys/send-journal.pub.pem" "$E/send/keys/"
  cp "$E/dmz/keys/link-mac.key" "$E/dmz/keys/dmz-sign.pub.pem" "$E/send/keys/"
  rm -rf "$t" # its recv journal key is discarded: the receiver makes its own
  template send.toml "$E/send/send.toml"

  echo "== 内网链路包 (bundle for the intranet side): $BUNDLE"
  mkdir -p "$BUNDLE/keys"
  (umask 077; cp "$E/dmz/keys/link.key" "$E/dmz/keys/link-mac.key" "$BUNDLE/keys/")
  cp "$E/dmz/keys/dmz-sign.pub.pem" "$BUNDLE/keys/"
  fingerprints "$BUNDLE" >"$BUNDLE/SHA256SUMS"
  own "$E/dmz" flumon-dmz
  own "$E/send" flumon-send
  echo "发给医院前置机 (to every hospital agent): $E/dmz/ca/ca.pem"
  echo "链路包指纹 (bundle fingerprints; read them out to the intranet side):"
  cat "$BUNDLE/SHA256SUMS"
  ;;

intranet)
  [[ -n "$BUNDLE" && -n "$HOSTNAME_" ]] || die "intranet 需要 --bundle --hostname"
  [[ -e "$E/intranet/intranet.toml" ]] && die "$E/intranet/intranet.toml 已存在 (exists)"
  (cd "$BUNDLE" && sha256sum --quiet -c SHA256SUMS) || die "链路包校验失败 (bundle checksum mismatch)"
  for f in "$BUNDLE"/keys/*; do
    case "$(basename "$f")" in
      link.key | link-mac.key | dmz-sign.pub.pem) ;;
      *) die "链路包中有不应离开 DMZ 的文件 (a file that must not leave the DMZ): $f" ;;
    esac
  done
  mkdir -p "$E"
  echo "== 内网: flumon-intranet init (日志密钥, 链路密钥与 DMZ 公钥的副本)"
  "${BIN}flumon-intranet" init "$E/intranet" --dmz-dir "$BUNDLE"
  mv "$E/intranet/intranet.toml" "$E/intranet/intranet.toml.init"
  rmdir "$E/intranet/inbound" "$E/intranet/journal" "$E/intranet/data"
  template intranet.toml "$E/intranet/intranet.toml"
  echo "== 内网: TLS 服务器证书 $HOSTNAME_ (自签名; 有内网 CA 时换成其签发的证书)"
  tls_cert "$E/intranet/tls" "$HOSTNAME_"

  echo "== 接收端 (receiver): 自己的日志密钥, 链路密钥、MAC 密钥与 DMZ 公钥的副本"
  t="$(mktemp -d)"
  "${BIN}flumon-transfer" init --dmz-dir "$BUNDLE" --out "$t/tr" >/dev/null
  mkdir -p "$E/recv/keys"
  cp "$t/tr/recv-keys/link.key" "$t/tr/recv-keys/link-mac.key" "$t/tr/recv-keys/dmz-sign.pub.pem" "$E/recv/keys/"
  cp "$t/tr/keys/recv-journal.pem" "$t/tr/keys/recv-journal.pub.pem" "$E/recv/keys/"
  cp "$t/tr/keys/recv-journal.pub.pem" "$E/intranet/keys/"
  rm -rf "$t" # its send journal key is discarded: the sender made its own on the DMZ
  template recv.toml "$E/recv/recv.toml"
  own "$E/intranet" flumon-intranet
  own "$E/recv" flumon-recv
  echo "完成. 现在销毁链路包介质上的密钥 (now wipe the bundle's medium): shred -u $BUNDLE/keys/*"
  ;;

*) sed -n '2,20p' "$0"; exit 2 ;;
esac
