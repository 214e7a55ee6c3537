#!/usr/bin/env bash
# RPC benchmark: Cascade's RPC layer against raw-TLS baselines.
#
# usage: Benchmarks/run-rpc.sh      (no arguments; env CASCADE_BENCH)
#
# Builds Benchmarks/c/tls_echo into Benchmarks/.out, makes throwaway
# certificates, then runs three rounds on 127.0.0.1 over mutual TLS 1.3, each
# round measuring, in this order:
#   a. unary latency, 20000 calls of 100 bytes: the C pair
#        tls_echo server --bind 127.0.0.1 --port 0 --ca CA --cert C --key K
#        tls_echo client --host 127.0.0.1 --port P ... --calls N --size S
#      then the same C pair with --epoll on both sides (non-blocking, one-shot epoll
#      re-armed before each wait: Cascade's I/O pattern with nothing else; a reference,
#      not the target's baseline),
#      then the same protocol in Python (Benchmarks/py/tls_echo.py, the ssl module over
#      the same OpenSSL; a reference row, skipped when python3 is missing),
#      then Cascade, $CASCADE_BENCH rpc-client ... --mode latency --calls N --size S
#      (all print "result mode=latency calls=N size=S p50_us=X p99_us=Y");
#   b. call rate, $CASCADE_BENCH rpc-client ... --mode rate --calls 100000
#      --in-flight 64 --size 100 ("result mode=rate calls=N seconds=S
#      calls_per_s=X"); there is no baseline for it;
#   c. streaming 1 GiB: Cascade's raw TLS pipe ($CASCADE_BENCH tls-recv /
#      tls-send, as in run-tls.sh; the receiver's "result bytes= seconds= cpu=
#      mbps=" counts) then $CASCADE_BENCH rpc-client ... --mode stream --bytes N
#      ("result mode=stream bytes=N seconds=S cpu=C mbps=M").
# All Cascade clients talk to ONE "$CASCADE_BENCH rpc-server --bind 127.0.0.1
# --port 0 ..." (prints "listening <port>"), stopped with SIGTERM at the end.
# Reports medians of the three rounds and the ratios against the targets.
# $CASCADE_BENCH defaults to .build/release/cascade-bench under the repo root;
# without it only the C echo runs. Exits non-zero if any run fails.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
OUT="$BENCH_DIR/.out"
RUNS=3
CALLS=20000 SIZE=100                  # unary latency
RATE_CALLS=100000 IN_FLIGHT=64        # call rate (message size $SIZE)
STREAM_BYTES=1073741824               # streaming, 1 GiB
P50_TARGET=1.30 STREAM_TARGET=0.85
LISTEN_WAIT=10                        # seconds for a server to print its port
LAT_TIMEOUT=180 RATE_TIMEOUT=600 STREAM_TIMEOUT=900   # seconds per run

usage() { echo "usage: ${0##*/}   (env CASCADE_BENCH: cascade-bench binary)"; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac
[[ $# -eq 0 ]] || { usage >&2; exit 2; }
SWIFT_BIN=${CASCADE_BENCH:-$ROOT/.build/release/cascade-bench}

declare -a PIDS=()
TMP=""
stop_pid() {  # SIGTERM, up to 5 s grace, then SIGKILL; reaps the pid
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do stop_pid "$pid"; done
    PIDS=()
    [[ -n $TMP ]] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {  # drop a reaped pid from PIDS
    local p keep=()
    for p in ${PIDS[@]+"${PIDS[@]}"}; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=(${keep[@]+"${keep[@]}"})
}

# start_bg NAME SECS CMD... -> BG_PID; stdout/stderr in $TMP/NAME.out/.err.
# SECS > 0 runs the command under timeout(1) (exit 124 when it fires).
start_bg() {
    local name=$1 secs=$2; shift 2
    : >"$TMP/$name.out"; : >"$TMP/$name.err"  # now, so no poll reads a stale file
    if (( secs > 0 )); then
        timeout -k 5 "$secs" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    else
        "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    fi
    BG_PID=$!; PIDS+=("$BG_PID")
}

finish_bg() { BG_RC=0; wait "$1" || BG_RC=$?; forget_pid "$1"; }  # PID -> BG_RC

# fail LABEL WHAT RC SECS NAME: explains a failed process, shows its stderr.
fail() {
    local why="exit status $3"
    (( $3 == 124 )) && why="timed out after $4 s"
    echo "error: $1: $2 failed ($why)" >&2
    [[ -s $TMP/$5.err ]] && sed 's/^/  | /' "$TMP/$5.err" | tail -n 20 >&2
    return 1
}

# wait_listening PID NAME -> PORT, from the "listening <port>" line.
wait_listening() {
    local i
    PORT=""
    for ((i = 0; i <= LISTEN_WAIT * 10; i++)); do
        PORT=$(awk '$1 == "listening" && $2 ~ /^[0-9]+$/ { print $2; exit }' "$TMP/$2.out")
        [[ -n $PORT ]] && return 0
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$1" 2>/dev/null; then
        echo "error: $2 printed no 'listening <port>' line within ${LISTEN_WAIT} s" >&2
    else
        echo "error: $2 exited before printing 'listening <port>'" >&2
    fi
    [[ -s $TMP/$2.err ]] && sed 's/^/  | /' "$TMP/$2.err" | tail -n 20 >&2
    return 1
}

# run_fg LABEL NAME SECS CMD...: runs a client to completion -> RES, its
# last "result ..." line.
run_fg() {
    local label=$1 name=$2 secs=$3; shift 3
    start_bg "$name" "$secs" "$@"
    finish_bg "$BG_PID"
    (( BG_RC == 0 )) || { fail "$label" "$name" "$BG_RC" "$secs" "$name"; return 1; }
    RES=$(grep '^result ' "$TMP/$name.out" | tail -n 1 || true)
    [[ -n $RES ]] || { echo "error: $label: $name printed no result line" >&2; return 1; }
}

# field NAME LINE -> value of NAME=... in a result line
field() { local kv; for kv in $2; do [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return; }; done; echo ""; }

# need LABEL NAME [EXPECTED] -> V, the numeric field NAME of $RES (or exit 1)
need() {
    V=$(field "$2" "$RES")
    if [[ ! $V =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
        echo "error: $1: no numeric $2= in: $RES" >&2; return 1
    fi
    if [[ -n ${3:-} && $V != "$3" ]]; then
        echo "error: $1: $2=$V, expected $3, in: $RES" >&2; return 1
    fi
}

need_mode() {
    [[ $(field mode "$RES") == "$2" ]] || { echo "error: $1: expected mode=$2 in: $RES" >&2; return 1; }
}

# latency_fields LABEL -> P50 P99 from $RES
latency_fields() {
    need_mode "$1" latency && need "$1" calls "$CALLS" && need "$1" size "$SIZE" || return 1
    need "$1" p50_us && P50=$V && need "$1" p99_us && P99=$V
}

# run_echo LABEL FLAG PROGRAM... -> P50 P99. PROGRAM is the echo's command before its
# server/client word; FLAG (may be empty) is passed last to both sides.
run_echo() {
    local label=$1 flag=$2 spid; shift 2
    start_bg echo-server "$LAT_TIMEOUT" "$@" server --bind 127.0.0.1 --port 0 "${SRV_TLS[@]}" ${flag:+"$flag"}
    spid=$BG_PID
    wait_listening "$spid" echo-server || return 1
    run_fg "$label" echo-client "$LAT_TIMEOUT" "$@" client --host 127.0.0.1 --port "$PORT" \
        "${CLI_TLS[@]}" --calls "$CALLS" --size "$SIZE" ${flag:+"$flag"} || return 1
    finish_bg "$spid"
    (( BG_RC == 0 )) || { fail "$label" echo-server "$BG_RC" "$LAT_TIMEOUT" echo-server; return 1; }
    latency_fields "$label"
}

run_c_echo() { run_echo "$1" "${2:-}" "$OUT/tls_echo"; }  # LABEL [--epoll] -> P50 P99

rpc_server_alive() {
    kill -0 "$RPC_PID" 2>/dev/null && return 0
    finish_bg "$RPC_PID"
    fail "$1" "rpc-server (exited early)" "$BG_RC" 0 rpc-server
}

rpc_client() {  # LABEL NAME SECS ARGS... -> RES
    local label=$1 name=$2 secs=$3; shift 3
    rpc_server_alive "$label" || return 1
    run_fg "$label" "$name" "$secs" "$SWIFT_BIN" rpc-client --host 127.0.0.1 --port "$RPC_PORT" \
        "${CLI_TLS[@]}" "$@" || { tail -n 20 "$TMP/rpc-server.err" | sed 's/^/  rpc-server| /' >&2; return 1; }
}

run_raw_stream() {  # LABEL -> V (receiver MB/s)
    local rpid
    start_bg tls-recv "$STREAM_TIMEOUT" "$SWIFT_BIN" tls-recv --bind 127.0.0.1 --port 0 "${SRV_TLS[@]}"
    rpid=$BG_PID
    wait_listening "$rpid" tls-recv || return 1
    run_fg "$1" tls-send "$STREAM_TIMEOUT" "$SWIFT_BIN" tls-send --host 127.0.0.1 --port "$PORT" \
        "${CLI_TLS[@]}" --bytes "$STREAM_BYTES" || return 1
    finish_bg "$rpid"
    (( BG_RC == 0 )) || { fail "$1" tls-recv "$BG_RC" "$STREAM_TIMEOUT" tls-recv; return 1; }
    RES=$(grep '^result ' "$TMP/tls-recv.out" | tail -n 1 || true)
    need "$1" bytes "$STREAM_BYTES" && need "$1" mbps
}

median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "building tls_echo into $OUT"
mkdir -p "$OUT"
read -r -a OSSL <<<"$(pkg-config --cflags --libs openssl)"
cc -O2 -Wall -Wextra -Werror -o "$OUT/tls_echo" "$BENCH_DIR/c/tls_echo.c" "$BENCH_DIR/c/common.c" \
    ${OSSL[@]+"${OSSL[@]}"}
PYTHON=$(command -v python3 || true)
[[ -n $PYTHON ]] || echo "python3 not found: the Python echo reference row is skipped"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cascade-rpc-bench.XXXXXX")
"$ROOT/certs/make-dev-certs.sh" --out "$TMP/certs" --days 1 \
    --agent sender=127.0.0.1 --agent receiver=127.0.0.1 >/dev/null
C="$TMP/certs"
SRV_TLS=(--ca "$C/ca.pem" --cert "$C/agent-receiver.pem" --key "$C/agent-receiver.key")
CLI_TLS=(--ca "$C/ca.pem" --cert "$C/agent-sender.pem" --key "$C/agent-sender.key")

HAVE_SWIFT=1
if [[ ! -x $SWIFT_BIN ]]; then
    HAVE_SWIFT=0
    echo "Cascade side missing: $SWIFT_BIN not found (build it or set CASCADE_BENCH); running only the C echo"
else
    start_bg rpc-server 0 "$SWIFT_BIN" rpc-server --bind 127.0.0.1 --port 0 "${SRV_TLS[@]}"
    RPC_PID=$BG_PID
    wait_listening "$RPC_PID" rpc-server || exit 1
    RPC_PORT=$PORT
    echo "rpc-server pid $RPC_PID listening on 127.0.0.1:$RPC_PORT"
fi

declare -a c_p50=() c_p99=() e_p50=() py_p50=() s_p50=() s_p99=() s_rate=() raw_mbps=() st_mbps=()
echo "$RUNS rounds on 127.0.0.1, mutual TLS 1.3: unary $CALLS x $SIZE B; rate $RATE_CALLS calls," \
    "$IN_FLIGHT in flight; stream $STREAM_BYTES bytes"
for ((run = 1; run <= RUNS; run++)); do
    label="C tls_echo        run $run"
    run_c_echo "$label" || exit 1
    c_p50+=("$P50"); c_p99+=("$P99"); echo "  $label: p50_us=$P50 p99_us=$P99"
    label="C tls_echo --epoll run $run"
    run_c_echo "$label" --epoll || exit 1
    e_p50+=("$P50"); echo "  $label: p50_us=$P50 p99_us=$P99"
    if [[ -n $PYTHON ]]; then
        label="Python tls_echo   run $run"
        run_echo "$label" "" "$PYTHON" "$BENCH_DIR/py/tls_echo.py" || exit 1
        py_p50+=("$P50"); echo "  $label: p50_us=$P50 p99_us=$P99"
    fi
    (( HAVE_SWIFT )) || continue

    label="Cascade unary     run $run"
    rpc_client "$label" rpc-latency "$LAT_TIMEOUT" --mode latency --calls "$CALLS" --size "$SIZE" || exit 1
    latency_fields "$label" || exit 1
    s_p50+=("$P50"); s_p99+=("$P99"); echo "  $label: p50_us=$P50 p99_us=$P99"

    label="Cascade rate      run $run"
    rpc_client "$label" rpc-rate "$RATE_TIMEOUT" --mode rate --calls "$RATE_CALLS" \
        --in-flight "$IN_FLIGHT" --size "$SIZE" || exit 1
    need_mode "$label" rate && need "$label" calls "$RATE_CALLS" && need "$label" calls_per_s || exit 1
    s_rate+=("$V"); echo "  $label: ${RES#result }"

    label="raw TLS stream    run $run"
    run_raw_stream "$label" || exit 1
    raw_mbps+=("$V"); echo "  $label: ${RES#result }"

    label="Cascade stream    run $run"
    rpc_client "$label" rpc-stream "$STREAM_TIMEOUT" --mode stream --bytes "$STREAM_BYTES" || exit 1
    need_mode "$label" stream && need "$label" bytes "$STREAM_BYTES" && need "$label" mbps || exit 1
    st_mbps+=("$V"); echo "  $label: ${RES#result }"
done

if (( HAVE_SWIFT )); then
    stop_pid "$RPC_PID"; forget_pid "$RPC_PID"
fi

cp50=$(median "${c_p50[@]}"); cp99=$(median "${c_p99[@]}"); ep50=$(median "${e_p50[@]}")
echo
echo "medians of $RUNS runs (p50 and p99 each the median of the per-run figures)"
if (( ! HAVE_SWIFT )); then
    printf '%-22s %-26s %12s\n' figure baseline Cascade "unary p50 us" "C tls_echo $cp50" - \
        "unary p99 us" "C tls_echo $cp99" -
    echo "Cascade: missing ($SWIFT_BIN); ran only the C echo baseline, no ratios"
    exit 0
fi
printf '%-22s %-26s %12s %7s %8s  %s\n' figure baseline Cascade ratio target verdict
sp50=$(median "${s_p50[@]}"); sp99=$(median "${s_p99[@]}")
rate=$(median "${s_rate[@]}")
rawm=$(median "${raw_mbps[@]}"); stm=$(median "${st_mbps[@]}")
p50_ratio=$(ratio "$sp50" "$cp50"); p99_ratio=$(ratio "$sp99" "$cp99")
st_ratio=$(ratio "$stm" "$rawm")
p50_verdict=$(awk -v r="$p50_ratio" -v t="$P50_TARGET" 'BEGIN { print (r <= t ? "PASS" : "ABOVE") }')
st_verdict=$(awk -v r="$st_ratio" -v t="$STREAM_TARGET" 'BEGIN { print (r >= t ? "PASS" : "BELOW") }')
printf '%-22s %-26s %12s %7s %8s  %s\n' "unary p50 us" "C tls_echo $cp50" "$sp50" "$p50_ratio" \
    "<=$P50_TARGET" "$p50_verdict"
printf '%-22s %-26s %12s %7s %8s  %s\n' "unary p99 us" "C tls_echo $cp99" "$sp99" "$p99_ratio" - -
printf '%-22s %-26s %12s %7s %8s  %s\n' "unary p50 us" "C --epoll $ep50" "$sp50" "$(ratio "$sp50" "$ep50")" - \
    "(reference: the I/O pattern alone)"
if [[ -n $PYTHON ]]; then
    pyp50=$(median "${py_p50[@]}")
    printf '%-22s %-26s %12s %7s %8s  %s\n' "unary p50 us" "Python echo $pyp50" "$sp50" "$(ratio "$sp50" "$pyp50")" - \
        "(reference: the same echo in Python)"
fi
printf '%-22s %-26s %12s %7s %8s  %s\n' "rate calls/s" "none (no baseline)" "$rate" - - -
printf '%-22s %-26s %12s %7s %8s  %s\n' "stream MB/s" "raw TLS pipe $rawm" "$stm" "$st_ratio" \
    ">=$STREAM_TARGET" "$st_verdict"
echo "rpc-unary-p50 ratio=$p50_ratio target<=$P50_TARGET $p50_verdict"
echo "rpc-rate calls_per_s=$rate (no baseline)"
echo "rpc-stream ratio=$st_ratio target>=$STREAM_TARGET $st_verdict"
