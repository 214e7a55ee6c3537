#!/usr/bin/env bash
# Fleet simulation: a real cascade-coordinator child process against a simulated fleet.
#
# usage: Benchmarks/run-fleet.sh      (no arguments; settings from the environment)
#
# Two runs, each printing one "result key=value ..." line that this script parses:
#   1. $CASCADE_BENCH fleet-sim --agents $FLEET_AGENTS --subnets $FLEET_SUBNETS
#        --release-mib $FLEET_RELEASE_MIB --coordinator-binary $CASCADE_COORDINATOR
#      1,000 AgentRuntimes in one process (own certificate, loopback address, member
#      listener and mutual-TLS session each; installs recorded, no restarts), one signed
#      release pushed and rolled out with every member of a cluster and every cluster at
#      once. Same-run baseline: one client fetching the same release from the same
#      coordinator with FetchChunks (median of 3), before the fleet starts.
#      Repeated $FLEET_SIM_RUNS times (default 1; each takes ~3 minutes): medians.
#   2. $CASCADE_BENCH fleet-idle --sessions $FLEET_SESSIONS --subnets $FLEET_IDLE_SUBNETS
#        --report-interval $FLEET_REPORT_INTERVAL --coordinator-data $FLEET_COORDINATOR_DATA
#      10,000 lightweight agent sessions (Register + Session with heartbeats, own
#      certificate and loopback address each): coordinator RSS per session against its
#      own RSS with no sessions, heartbeats absorbed during a 5 s burst (every session
#      every 1 s), and the time for all sessions to come back after kill -9 and a restart
#      on the same data directory and port.
# The coordinator's data directory for run 2 defaults to /dev/shm: on this VM's shared disk
# every SQLite commit is an fsync (~2,000/s when quiet), which would measure the disk,
# not the coordinator. Set FLEET_COORDINATOR_DATA=/tmp for the on-disk figure.
# $CASCADE_BENCH / $CASCADE_COORDINATOR default to .build/release/ under the repo root.
# Every coordinator the benchmark starts is killed by it (and by this script on exit,
# from the "coordinator pid N" lines). Exits non-zero if a run fails.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH=${CASCADE_BENCH:-$ROOT/.build/release/cascade-bench}
COORD=${CASCADE_COORDINATOR:-$ROOT/.build/release/cascade-coordinator}
AGENTS=${FLEET_AGENTS:-1000} SUBNETS=${FLEET_SUBNETS:-40} RELEASE_MIB=${FLEET_RELEASE_MIB:-8}
SIM_RUNS=${FLEET_SIM_RUNS:-1}
SESSIONS=${FLEET_SESSIONS:-10000} IDLE_SUBNETS=${FLEET_IDLE_SUBNETS:-50}
REPORT_INTERVAL=${FLEET_REPORT_INTERVAL:-5s}
COORD_DATA=${FLEET_COORDINATOR_DATA:-/dev/shm}
[[ -d $COORD_DATA ]] || COORD_DATA=${TMPDIR:-/tmp}
EGRESS_TARGET=1.10 RSS_TARGET_MIB=1024 RECONNECT_TARGET=30
SIM_TIMEOUT=1500 IDLE_TIMEOUT=1800    # seconds per run

usage() { echo "usage: ${0##*/}   (env: CASCADE_BENCH CASCADE_COORDINATOR FLEET_AGENTS FLEET_SUBNETS FLEET_RELEASE_MIB FLEET_SIM_RUNS FLEET_SESSIONS FLEET_IDLE_SUBNETS FLEET_REPORT_INTERVAL FLEET_COORDINATOR_DATA)"; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac
[[ $# -eq 0 ]] || { usage >&2; exit 2; }
for binary in "$BENCH" "$COORD"; do
    [[ -x $binary ]] || { echo "error: $binary not found: make fleet-sim builds it" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cascade-fleet-bench.XXXXXX")
BENCH_PID=""
cleanup() {  # the benchmark, then any coordinator it named that is still alive
    local pid
    [[ -n $BENCH_PID ]] && kill -TERM "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null || true
    for pid in $(awk '$1 == "coordinator" && $2 == "pid" { print $3 }' "$TMP"/*.out 2>/dev/null); do
        grep -qs cascade-coordinator "/proc/$pid/cmdline" && kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run NAME SECS ARGS... -> RES, the last "result ..." line; progress goes to the terminal.
run() {
    local name=$1 secs=$2 rc=0; shift 2
    timeout -k 10 "$secs" "$BENCH" "$@" >"$TMP/$name.out" 2> >(tee "$TMP/$name.err" | sed -u "s/^/  /" >&2) &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    if (( rc != 0 )); then
        (( rc == 124 )) && echo "error: $name timed out after $secs s" >&2 || echo "error: $name failed (exit $rc)" >&2
        return 1
    fi
    RES=$(grep '^result ' "$TMP/$name.out" | tail -n 1 || true)
    [[ -n $RES ]] || { echo "error: $name printed no result line" >&2; return 1; }
}

field() { local kv; for kv in $2; do [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return; }; done; echo ""; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "<=" ? v <= t : v >= t); print (ok ? "PASS" : "MISSED") }'; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
declare -A SIM=()
SIM_KEYS="register_s rollout_s single_stream_s artifact_bytes artifact_over_fleet artifact_over_clusters
 coord_counted_bytes coord_counted_over_clusters socket_bytes
 socket_over_clusters wchar_bytes wchar_over_clusters coord_hwm_mib coord_cpu_rollout_s coord_cpu_total_s
 coord_rss_bare_mib coord_rss_idle_mib idle_session_kib sim_rss_per_agent_kib sim_hwm_mib"
for ((i = 1; i <= SIM_RUNS; i++)); do
    echo "fleet-sim run $i of $SIM_RUNS: $AGENTS agents, $SUBNETS subnets, $RELEASE_MIB MiB release"
    run "fleet-sim-$i" "$SIM_TIMEOUT" fleet-sim --agents "$AGENTS" --subnets "$SUBNETS" \
        --release-mib "$RELEASE_MIB" --coordinator-binary "$COORD" || exit 1
    echo "  ${RES#result }"
    for key in $SIM_KEYS; do SIM[$key]="${SIM[$key]:-} $(field "$key" "$RES")"; done
    clusters=$(field clusters "$RES") release_bytes=$(field release_bytes "$RES")
    policy="maxUnavailable $(field max_unavailable "$RES"), maxParallelClusters $(field parallel_clusters "$RES")"
done
# shellcheck disable=SC2086  # the values are space-separated numbers
for key in $SIM_KEYS; do SIM[$key]=$(median ${SIM[$key]}); done
echo "load after fleet-sim: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "fleet-idle: $SESSIONS sessions, $IDLE_SUBNETS subnets, report interval $REPORT_INTERVAL, coordinator data in $COORD_DATA"
run fleet-idle "$IDLE_TIMEOUT" fleet-idle --sessions "$SESSIONS" --subnets "$IDLE_SUBNETS" \
    --report-interval "$REPORT_INTERVAL" --coordinator-data "$COORD_DATA" --coordinator-binary "$COORD" || exit 1
IDLE=$RES
echo "  ${IDLE#result }"
echo "load after fleet-idle: $(cut -d' ' -f1-3 /proc/loadavg)"

fleet_bytes=$(( AGENTS * release_bytes )) cluster_bytes=$(( clusters * release_bytes ))
stream_ratio=$(ratio "${SIM[rollout_s]}" "${SIM[single_stream_s]}")
fleet_stream_ratio=$(ratio "${SIM[rollout_s]}" "$(awk -v s="${SIM[single_stream_s]}" -v n="$AGENTS" 'BEGIN { print s * n }')")
rss=$(field coord_rss_mib "$IDLE") reconnect=$(field reconnect_s "$IDLE")
echo
echo "fleet simulation ($SIM_RUNS run(s), medians; $policy)"
printf '  %-44s %s\n' \
    "rollout wall time" "${SIM[rollout_s]} s (registering the fleet took ${SIM[register_s]} s)" \
    "single stream, same release, same run" "${SIM[single_stream_s]} s" \
    "rollout / single stream" "$stream_ratio" \
    "rollout / ($AGENTS x single stream)" "$fleet_stream_ratio" \
    "coordinator artifact bytes (agents' count)" "${SIM[artifact_bytes]} = ${SIM[artifact_over_fleet]} x fleet ($fleet_bytes), ${SIM[artifact_over_clusters]} x clusters ($cluster_bytes)" \
    "coordinator's own count (rollout status)" "${SIM[coord_counted_bytes]} = ${SIM[coord_counted_over_clusters]} x clusters" \
    "coordinator TCP bytes sent in the rollout" "${SIM[socket_bytes]} = ${SIM[socket_over_clusters]} x clusters" \
    "coordinator wchar in the rollout - idle rate" "${SIM[wchar_bytes]} = ${SIM[wchar_over_clusters]} x clusters (includes its SQLite writes)" \
    "coordinator peak RSS (VmHWM)" "${SIM[coord_hwm_mib]} MiB" \
    "coordinator CPU, rollout / whole run" "${SIM[coord_cpu_rollout_s]} s / ${SIM[coord_cpu_total_s]} s" \
    "coordinator RSS bare / $AGENTS idle sessions" "${SIM[coord_rss_bare_mib]} / ${SIM[coord_rss_idle_mib]} MiB: ${SIM[idle_session_kib]} KiB per session" \
    "simulator RSS per AgentRuntime / peak" "${SIM[sim_rss_per_agent_kib]} KiB / ${SIM[sim_hwm_mib]} MiB"
echo "idle sessions"
printf '  %-44s %s\n' \
    "coordinator RSS bare / $SESSIONS sessions" "$(field coord_rss_bare_mib "$IDLE") / $rss MiB: $(field rss_per_session_kib "$IDLE") KiB per session (after restart: $(field restart_rss_mib "$IDLE") MiB)" \
    "heartbeats offered / absorbed per second" "$(field heartbeats_offered_per_s "$IDLE") / $(field heartbeats_absorbed_per_s "$IDLE") (coordinator $(field burst_cpu_cores "$IDLE") cores)" \
    "reconnect after kill -9 + restart" "$reconnect s for $(field reconnected "$IDLE") sessions ($(field down_s "$IDLE") s down), $(field resumed "$IDLE") TLS sessions resumed"

egress_verdict=$(verdict "${SIM[socket_over_clusters]}" "$EGRESS_TARGET" "<=")
rss_verdict=$(verdict "$rss" "$RSS_TARGET_MIB" "<=")
reconnect_verdict=$(verdict "$reconnect" "$RECONNECT_TARGET" "<=")
echo
echo "fleet-egress ratio=${SIM[socket_over_clusters]} (TCP bytes / clusters x release; artifact bytes ${SIM[artifact_over_clusters]}) target<=$EGRESS_TARGET $egress_verdict"
echo "fleet-rollout seconds=${SIM[rollout_s]} single_stream_s=${SIM[single_stream_s]} ratio=$stream_ratio per_agent_ratio=$fleet_stream_ratio (report)"
echo "fleet-idle-rss mib=$rss sessions=$SESSIONS target<=$RSS_TARGET_MIB $rss_verdict"
echo "fleet-reconnect seconds=$reconnect target<=$RECONNECT_TARGET $reconnect_verdict"
