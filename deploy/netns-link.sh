#!/usr/bin/env bash
# A one-way link between two network namespaces, for testing flumon-transfer
# as it runs behind a data diode (TRANSFER.md "Testing the link").
#
#   NAME-dmz  (192.0.2.1/30, veth NAME-d) ══ veth ══▶ NAME-intra (192.0.2.2/30, veth NAME-i)
#             forward: LOSS % dropped on input in NAME-intra (nftables numgen), or netem if the
#                      kernel has it (then also duplication and reordering)
#             reverse: every packet leaving NAME-intra on NAME-i counted and dropped (nftables),
#                      ARP output dropped too; static neighbour entries, IPv6 off on the pair
#
# Addresses are from TEST-NET-1 (RFC 5737) and exist only inside the two namespaces.
#
# usage: netns-link.sh up NAME [LOSS_PCT]     create (NAME: ≤ 12 characters)
#        netns-link.sh down NAME              remove both namespaces
#        netns-link.sh counters NAME          "forward_dropped N reverse_dropped N"
#        netns-link.sh dmz|intra NAME CMD…    run CMD in that namespace
# Needs root, iproute2 and nftables (Debian: apt-get install -y iproute2 nftables).
set -euo pipefail

cmd=${1:-}
name=${2:-}
[[ -n "$cmd" && -n "$name" ]] || { sed -n '2,20p' "$0"; exit 2; }
(( ${#name} <= 12 )) || { echo "NAME must be at most 12 characters" >&2; exit 2; }
dmz="$name-dmz"; intra="$name-intra"; vd="$name-d"; vi="$name-i"

up() {
  local loss=${1:-0}
  ip netns add "$dmz"
  ip netns add "$intra"
  ip link add "$vd" type veth peer name "$vi"
  ip link set "$vd" netns "$dmz"
  ip link set "$vi" netns "$intra"
  ip netns exec "$dmz" sysctl -qw "net.ipv6.conf.$vd.disable_ipv6=1"
  ip netns exec "$intra" sysctl -qw "net.ipv6.conf.$vi.disable_ipv6=1"
  ip -n "$dmz" addr add 192.0.2.1/30 dev "$vd"
  ip -n "$intra" addr add 192.0.2.2/30 dev "$vi"
  ip -n "$dmz" link set lo up
  ip -n "$intra" link set lo up
  # no ARP over the link: each side knows the other's address statically
  local mac_d mac_i
  mac_d=$(ip -n "$dmz" -o link show "$vd" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  mac_i=$(ip -n "$intra" -o link show "$vi" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  ip -n "$dmz" link set "$vd" arp off up
  ip -n "$intra" link set "$vi" arp off up
  ip -n "$dmz" neigh replace 192.0.2.2 lladdr "$mac_i" dev "$vd" nud permanent
  ip -n "$intra" neigh replace 192.0.2.1 lladdr "$mac_d" dev "$vi" nud permanent
  # the receiving side: emulated loss in, nothing out
  local netem=0
  if (( loss > 0 )) && ip netns exec "$dmz" tc qdisc add dev "$vd" root netem loss "$loss%" duplicate 1% reorder 5% delay 1ms 2>/dev/null; then
    netem=1
  fi
  local lossrule=""
  if (( loss > 0 && netem == 0 )); then
    lossrule="iifname \"$vi\" numgen random mod 100 < $loss counter drop comment \"forward loss\""
  fi
  ip netns exec "$intra" nft -f - <<NFT
table inet diode {
  chain input {
    type filter hook input priority 0; policy accept;
    $lossrule
    iifname "$vi" counter accept comment "forward delivered"
  }
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "$vi" counter drop comment "reverse dropped"
  }
}
table arp diode {
  chain output {
    type filter hook output priority 0; policy accept;
    counter drop comment "arp out dropped"
  }
}
NFT
  echo "link $name up: 192.0.2.1 ($dmz) ─▶ 192.0.2.2 ($intra), loss ${loss}% ($([[ $netem == 1 ]] && echo netem || echo nftables)), reverse dropped"
}

counters() {
  local rules fwd rev
  rules=$(ip netns exec "$intra" nft list table inet diode)
  fwd=$(sed -n 's/.*counter packets \([0-9]*\) bytes [0-9]* drop comment "forward loss".*/\1/p' <<<"$rules")
  rev=$(sed -n 's/.*counter packets \([0-9]*\) bytes [0-9]* drop comment "reverse dropped".*/\1/p' <<<"$rules")
  echo "forward_dropped ${fwd:-0} reverse_dropped ${rev:-0}"
}

case "$cmd" in
  up) up "${3:-0}" ;;
  down)
    ip netns del "$dmz" 2>/dev/null || true
    ip netns del "$intra" 2>/dev/null || true
    ;;
  counters) counters ;;
  dmz) shift 2; exec ip netns exec "$dmz" "$@" ;;
  intra) shift 2; exec ip netns exec "$intra" "$@" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
