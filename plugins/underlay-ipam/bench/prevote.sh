#!/bin/bash
# ADD latency after a partitioned etcd member rejoins, with etcd's --pre-vote off and
# on. Three members: two in namespace A (10.77.0.1, .2), one in namespace B (.3),
# joined by a veth pair; the plugin runs in A. The partition is B's link going down
# for PART seconds. Prints, per setting: ADDs after healing, failures, p50/p99/max ms.
# Usage: bash plugins/underlay-ipam/bench/prevote.sh [PATH-TO-underlay-ipam]
set -euo pipefail
BIN=${1:-target/x86_64-unknown-linux-gnu/debug/underlay-ipam}
[ -x "$BIN" ] || BIN=target/debug/underlay-ipam
BIN=$(realpath "$BIN")
PART=${PART:-8}
AFTER=${AFTER:-8}
A=ipam-pv-a-$$ B=ipam-pv-b-$$
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add $A
ip netns add $B
ip -n $A link add va type veth peer name vb netns $B
ip -n $A addr add 10.77.0.1/24 dev va
ip -n $A addr add 10.77.0.2/24 dev va
ip -n $B addr add 10.77.0.3/24 dev vb
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set va up
ip -n $B link set vb up

CLUSTER="m1=http://10.77.0.1:2380,m2=http://10.77.0.2:2380,m3=http://10.77.0.3:2380"
EPS='["http://10.77.0.1:2379","http://10.77.0.2:2379","http://10.77.0.3:2379"]'

member() { # NS NAME IP PREVOTE
  ip netns exec "$1" etcd --name "$2" --data-dir "$DIR/$2" \
    --listen-client-urls "http://$3:2379" --advertise-client-urls "http://$3:2379" \
    --listen-peer-urls "http://$3:2380" --initial-advertise-peer-urls "http://$3:2380" \
    --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token "pv$$" \
    --pre-vote="$4" >"$DIR/$2.log" 2>&1 &
  PIDS+=($!)
}

ms() { echo $(( $(date +%s%N) / 1000000 )); }

add() { # ID → prints "ms ok|code"
  local t0 t1 out
  t0=$(ms)
  out=$(printf '%s' "$CONF" | ip netns exec $A env -i CNI_COMMAND=ADD CNI_CONTAINERID="$1" \
    CNI_NETNS=/proc/self/ns/net CNI_IFNAME=eth0 CNI_PATH=/nonexistent "$BIN" 2>/dev/null) && ok=ok || ok=fail
  t1=$(ms)
  echo "$((t1 - t0)) $ok"
}

stats() { # FILE LABEL
  sort -n "$1" | awk -v label="$2" '{ v[NR] = $1; if ($2 != "ok") f++ }
    END { p = int(NR * 0.99); if (p < 1) p = 1; printf "%s: %d ADDs, %d failed, p50 %d ms, p99 %d ms, max %d ms\n",
          label, NR, f, v[int((NR + 1) / 2)], v[p], v[NR] }'
}

for PREVOTE in false true; do
  rm -rf "${DIR:?}"/m*
  PIDS=()
  member $A m1 10.77.0.1 $PREVOTE
  member $A m2 10.77.0.2 $PREVOTE
  member $B m3 10.77.0.3 $PREVOTE
  CONF="{\"cniVersion\":\"1.1.0\",\"name\":\"pv$PREVOTE\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"underlay-ipam\",\"subnet\":\"10.78.0.0/16\",\"node\":\"n1\",\"etcd\":{\"endpoints\":$EPS,\"timeoutMs\":5000}}}"
  for _ in $(seq 50); do
    ip netns exec $A etcdctl --endpoints=http://10.77.0.1:2379,http://10.77.0.2:2379 endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  ip netns exec $B etcdctl --endpoints=http://10.77.0.3:2379 endpoint health >/dev/null 2>&1 || sleep 2
  ip -n $B link set vb down
  sleep "$PART"
  ip -n $B link set vb up
  : >"$DIR/after"
  end=$(( $(ms) + AFTER * 1000 )); i=0
  while [ "$(ms)" -lt "$end" ]; do add "pv$PREVOTE-$i" >>"$DIR/after"; i=$((i + 1)); done
  stats "$DIR/after" "pre-vote=$PREVOTE, ${AFTER}s after a ${PART}s partition of one member healed"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
done
