#!/usr/bin/env bash
# make demo: a coordinator and 12 real agents (each a main program + upgrader pair) on
# loopback — 3 subnets × 4 on 127.0.1.x, 127.0.2.x, 127.0.3.x — install 1.0 everywhere, then
# build, sign and push 1.1 and roll it out, showing `cascadectl rollout watch`.
#
# usage: scripts/demo.sh [--keep]
#   --keep leaves the coordinator and the 12 agents running after the rollout and prints the
#   export lines that reach them with cascadectl and the command that stops them.
# Expects release binaries in .build/release (the Makefile builds them first).
# Otherwise it stops every process it started, also on Ctrl-C or a failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CASCADE_BIN:-$REPO/.build/release}
KEEP=0
case ${1:-} in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "usage: scripts/demo.sh [--keep]" >&2; exit 2 ;;
esac
for tool in cascade-coordinator cascade-agent cascade-upgrader cascadectl; do
    [ -x "$BIN/$tool" ] || { echo "demo: $BIN/$tool is missing; run 'make demo' (it builds them)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cascade-demo.XXXXXX")
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/agents" "$WORK/bundles"
SUBNETS=3 PER_SUBNET=4
AGENTS=()
for ((k = 1; k <= PER_SUBNET; k++)); do
    for ((s = 1; s <= SUBNETS; s++)); do AGENTS+=("a$s-$(printf %02d "$k")"); done
done
COORDINATOR_PID=""
START=$(date +%s)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - START )) s"; }

# Stops the fleet: each agent pair with its own stop command, then the coordinator. Written
# out as stop.sh, so that a fleet left running by --keep can be stopped later.
write_stop_script() {
    cat >"$WORK/stop.sh" <<EOF
#!/usr/bin/env bash
# Stops the demo fleet in $WORK (each agent pair, then the coordinator).
for root in "$WORK"/agents/*; do
    [ -d "\$root/state" ] && "\$root/main/current/bin/cascade-agent" stop --root "\$root" >/dev/null 2>&1 || true
done
if [ -n "${COORDINATOR_PID}" ] && kill -0 "${COORDINATOR_PID}" 2>/dev/null; then
    kill -TERM "${COORDINATOR_PID}"
    for _ in \$(seq 50); do kill -0 "${COORDINATOR_PID}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${COORDINATOR_PID}" 2>/dev/null || true
fi
# Anything left under the work directory (a pair that was mid-restart) goes too.
pkill -KILL -f "$WORK/agents/" 2>/dev/null || true
echo "stopped the demo fleet in $WORK"
EOF
    chmod +x "$WORK/stop.sh"
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    echo
    write_stop_script
    if [ $KEEP -eq 1 ] && [ $status -eq 0 ]; then
        say "the fleet keeps running (--keep)"
        echo "reach it with cascadectl:"
        echo "  export CASCADE_COORDINATOR=${CASCADE_COORDINATOR:-} CASCADE_CA=$CASCADE_CA CASCADE_CERT=$CASCADE_CERT CASCADE_KEY=$CASCADE_KEY"
        echo "  $BIN/cascadectl agents list"
        echo "logs: $LOGS"
        echo "stop it with: $WORK/stop.sh"
        exit 0
    fi
    say "stopping every process the demo started"
    "$WORK/stop.sh" >/dev/null
    echo "logs: $LOGS (coordinator.log, one <agent>.log per agent)"
    if [ $status -eq 0 ]; then
        rm -rf "$WORK/agents" "$WORK/bundles" "$WORK/coordinator/blobs"
    fi
    exit $status
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

say "work directory $WORK"

say "development certificates: a CA, the coordinator, 12 agents, an operator"
agent_args=()
for id in "${AGENTS[@]}"; do
    s=${id:1:1} k=$((10#${id:3:2}))
    agent_args+=(--agent "$id=127.0.$s.$((k + 10))")
done
"$REPO/certs/make-dev-certs.sh" --out "$WORK/certs" --days 1 --coordinator main=127.0.0.1 --operator demo \
    "${agent_args[@]}" >"$LOGS/certs.log"
CERTS=$WORK/certs
export CASCADE_CA=$CERTS/ca.pem CASCADE_CERT=$CERTS/operator-demo.pem CASCADE_KEY=$CERTS/operator-demo.key

say "a release-signing key (Ed25519, offline in real life)"
"$BIN/cascadectl" key generate --out "$WORK/release.key"

make_bundle() {  # version -> bundle path
    local version=$1 dir=$WORK/bundles/$1
    mkdir -p "$dir/bin"
    cp "$BIN/cascade-agent" "$BIN/cascade-upgrader" "$dir/bin/"
    echo "$version" >"$dir/VERSION"
    tar --format=ustar -C "$dir" -cf "$WORK/bundles/cascade-$version.tar" bin VERSION
    echo "$WORK/bundles/cascade-$version.tar"
}
BUNDLE_10=$(make_bundle 1.0)
BUNDLE_11=$(make_bundle 1.1)

say "the coordinator"
"$BIN/cascade-coordinator" --data "$WORK/coordinator" --listen 127.0.0.1:0 \
    --ca "$CERTS/ca.pem" --cert "$CERTS/coordinator-main.pem" --key "$CERTS/coordinator-main.key" \
    --trusted-key "$WORK/release.key.pub" --report-interval 1s --liveness-timeout 10s --engine-interval 200ms \
    >"$LOGS/coordinator.log" 2>&1 &
COORDINATOR_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$LOGS/coordinator.log" && break; sleep 0.1; done
ADDRESS=$(sed -n 's/^cascade-coordinator: listening on \([^,]*\),.*/\1/p' "$LOGS/coordinator.log")
[ -n "$ADDRESS" ] || { echo "demo: the coordinator did not start; see $LOGS/coordinator.log" >&2; exit 1; }
export CASCADE_COORDINATOR=$ADDRESS
echo "coordinator listening on $ADDRESS (pid $COORDINATOR_PID)"

say "installing 1.0 on 12 agents and starting each pair (upgrader + main program)"
weight=90
for id in "${AGENTS[@]}"; do
    s=${id:1:1} k=$((10#${id:3:2}))
    root=$WORK/agents/$id
    "$BIN/cascade-agent" install --root "$root" "$BUNDLE_10" >/dev/null
    cat >"$root/agent.conf" <<EOF
health-deadline = 30
stop-grace = 2
poll-interval = 0.2
EOF
    # Distinct fixed idle ratios make the leader and the "sixth server" predictable.
    cat >"$root/fleet.conf" <<EOF
coordinator = $ADDRESS
bind = 127.0.$s.$((k + 10))
member-port = 7401
ca = $CERTS/ca.pem
cert = $CERTS/agent-$id.pem
key = $CERTS/agent-$id.key
release-key = $WORK/release.key.pub
report-interval = 1
idle-cpu = 0.$weight
idle-memory = 0.5
EOF
    weight=$((weight - 5))
    "$root/upgrader/current/bin/cascade-upgrader" --root "$root" >>"$LOGS/$id.log" 2>&1 &
done
for _ in $(seq 300); do
    online=$("$BIN/cascadectl" agents list --json 2>/dev/null | grep -Ec '"connected" ?: ?true' || true)
    [ "$online" -ge 12 ] && break
    sleep 0.2
done
"$BIN/cascadectl" clusters list

say "building, signing and pushing release 1.1"
"$BIN/cascadectl" release create --signing-key "$WORK/release.key" --name cascade-agent --version 1.1 \
    --out "$WORK/bundles/cascade-1.1.manifest" "$BUNDLE_11"
"$BIN/cascadectl" release push --manifest "$WORK/bundles/cascade-1.1.manifest" "$BUNDLE_11"

say "rolling out 1.1 (at most 2 members of a cluster at once, all 3 clusters in parallel)"
"$BIN/cascadectl" rollout start --release 1.1 --max-unavailable 2 --max-parallel-clusters 3 \
    --failure-budget 10% --health-timeout 30s
ROLLOUT_START=$(date +%s)
"$BIN/cascadectl" rollout watch
echo "rollout finished in $(( $(date +%s) - ROLLOUT_START )) s"

say "waiting for every upgrader to be upgraded too (the new main program does it once confirmed)"
for _ in $(seq 300); do
    [ "$("$BIN/cascadectl" agents list --json 2>/dev/null | grep -Ec '"upgraderVersion" ?: ?"1.1"' || true)" -ge 12 ] && break
    sleep 0.2
done
say "the fleet (VERSION is main program / upgrader)"
"$BIN/cascadectl" agents list
say "done in $(elapsed)"
