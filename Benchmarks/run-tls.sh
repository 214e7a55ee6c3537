#!/usr/bin/env bash
# TLS bulk benchmark: Cascade's Swift pair against the C/OpenSSL baseline.
#
# usage: Benchmarks/run-tls.sh [BYTES]      (default 1073741824 = 1 GiB)
#
# Builds Benchmarks/c into Benchmarks/.out, makes throwaway certificates,
# then runs three rounds, each a C pair and then a Swift pair, on 127.0.0.1
# over mutual TLS 1.3. The Swift binary is $CASCADE_BENCH (default
# .build/release/cascade-bench under the repo root), run as
#   $CASCADE_BENCH tls-recv --bind 127.0.0.1 --port 0 --ca CA --cert C --key K
#   $CASCADE_BENCH tls-send --host 127.0.0.1 --port P --ca CA --cert C --key K --bytes N
# Both sides, like the C programs, print "result bytes=N seconds=S cpu=C
# mbps=M"; the receiver first prints "listening <port>". Reports medians.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
OUT="$BENCH_DIR/.out"
RUNS=3
TARGET=0.90

usage() { echo "usage: ${0##*/} [BYTES]   (default 1073741824)"; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac
[[ $# -le 1 ]] || { usage >&2; exit 2; }
BYTES=${1:-1073741824}
[[ $BYTES =~ ^[0-9]+$ && $BYTES -gt 0 ]] || { echo "BYTES must be a positive integer" >&2; usage >&2; exit 2; }
SWIFT_BIN=${CASCADE_BENCH:-$ROOT/.build/release/cascade-bench}

declare -a PIDS=()
TMP=""
cleanup() {
    local pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ -n $TMP ]] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "building C baseline into $OUT"
mkdir -p "$OUT"
read -r -a OSSL <<<"$(pkg-config --cflags --libs openssl)"
for prog in tls_recv tls_send; do
    cc -O2 -Wall -Wextra -Werror -o "$OUT/$prog" "$BENCH_DIR/c/$prog.c" "$BENCH_DIR/c/common.c" \
        ${OSSL[@]+"${OSSL[@]}"}
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cascade-bench.XXXXXX")
"$ROOT/certs/make-dev-certs.sh" --out "$TMP/certs" --days 1 \
    --agent sender=127.0.0.1 --agent receiver=127.0.0.1 >/dev/null
C="$TMP/certs"

# field NAME LINE -> value of NAME=... in a result line
field() { local kv; for kv in $2; do [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return; }; done; echo ""; }

forget_pid() {  # drop a reaped pid from PIDS
    local p keep=()
    for p in ${PIDS[@]+"${PIDS[@]}"}; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=(${keep[@]+"${keep[@]}"})
}

# run_pair LABEL RECV_CMD... -- SEND_CMD...
# Runs in this shell (so the EXIT trap knows its pids); sets R_MBPS, R_RCPU
# and R_SCPU from the receiver's and sender's result lines.
run_pair() {
    local label=$1; shift
    local -a recv=() send=()
    while [[ $1 != -- ]]; do recv+=("$1"); shift; done; shift
    send=("$@")
    local rout="$TMP/recv.out" sout="$TMP/send.out" port="" i rpid spid rrc=0 src=0
    : >"$rout"; : >"$sout"
    "${recv[@]}" --bind 127.0.0.1 --port 0 --ca "$C/ca.pem" \
        --cert "$C/agent-receiver.pem" --key "$C/agent-receiver.key" >"$rout" 2>"$TMP/recv.err" &
    rpid=$!; PIDS+=("$rpid")
    for ((i = 0; i < 100; i++)); do
        port=$(awk '$1 == "listening" { print $2; exit }' "$rout")
        [[ -n $port ]] && break
        kill -0 "$rpid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $port ]]; then
        echo "$label: receiver did not report a port" >&2; cat "$TMP/recv.err" >&2; return 1
    fi
    "${send[@]}" --host 127.0.0.1 --port "$port" --ca "$C/ca.pem" \
        --cert "$C/agent-sender.pem" --key "$C/agent-sender.key" --bytes "$BYTES" \
        >"$sout" 2>"$TMP/send.err" &
    spid=$!; PIDS+=("$spid")
    wait "$spid" || src=$?; forget_pid "$spid"
    wait "$rpid" || rrc=$?; forget_pid "$rpid"
    local rres sres
    rres=$(grep '^result ' "$rout" || true); sres=$(grep '^result ' "$sout" || true)
    if (( rrc != 0 || src != 0 )) || [[ -z $rres || -z $sres ]]; then
        echo "$label: failed (receiver rc=$rrc, sender rc=$src)" >&2
        cat "$TMP/recv.err" "$TMP/send.err" >&2
        return 1
    fi
    if [[ $(field bytes "$rres") != "$BYTES" ]]; then
        echo "$label: receiver got $(field bytes "$rres") bytes, expected $BYTES" >&2; return 1
    fi
    echo "  $label  recv: ${rres#result }"
    echo "  $label  send: ${sres#result }"
    R_MBPS=$(field mbps "$rres"); R_RCPU=$(field cpu "$rres"); R_SCPU=$(field cpu "$sres")
}

median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }

HAVE_SWIFT=1
if [[ ! -x $SWIFT_BIN ]]; then
    HAVE_SWIFT=0
    echo "Swift side missing: $SWIFT_BIN not found (build it or set CASCADE_BENCH); running C only"
fi

declare -a c_mbps=() c_rcpu=() c_scpu=() s_mbps=() s_rcpu=() s_scpu=()
echo "transferring $BYTES bytes per run, $RUNS runs each, 127.0.0.1, mutual TLS 1.3"
for ((run = 1; run <= RUNS; run++)); do
    run_pair "C     run $run" "$OUT/tls_recv" -- "$OUT/tls_send" || exit 1
    c_mbps+=("$R_MBPS"); c_rcpu+=("$R_RCPU"); c_scpu+=("$R_SCPU")
    if (( HAVE_SWIFT )); then
        run_pair "Swift run $run" "$SWIFT_BIN" tls-recv -- "$SWIFT_BIN" tls-send || exit 1
        s_mbps+=("$R_MBPS"); s_rcpu+=("$R_RCPU"); s_scpu+=("$R_SCPU")
    fi
done

GIB=$(awk -v b="$BYTES" 'BEGIN { printf "%.6f", b / 1073741824 }')
per_gib() { awk -v c="$1" -v g="$GIB" 'BEGIN { printf "%.3f", c / g }'; }

echo
printf '%-6s %10s %16s %16s\n' impl "MB/s" "recv cpu s/GiB" "send cpu s/GiB"
cm=$(median "${c_mbps[@]}")
printf '%-6s %10.1f %16s %16s\n' C "$cm" "$(per_gib "$(median "${c_rcpu[@]}")")" \
    "$(per_gib "$(median "${c_scpu[@]}")")"
if (( HAVE_SWIFT )); then
    sm=$(median "${s_mbps[@]}")
    printf '%-6s %10.1f %16s %16s\n' Swift "$sm" "$(per_gib "$(median "${s_rcpu[@]}")")" \
        "$(per_gib "$(median "${s_scpu[@]}")")"
    ratio=$(awk -v s="$sm" -v c="$cm" 'BEGIN { printf "%.2f", (c > 0 ? s / c : 0) }')
    verdict=$(awk -v r="$ratio" -v t="$TARGET" 'BEGIN { print (r >= t ? "PASS" : "BELOW") }')
    echo "Swift/C MB/s ratio: $ratio"
    echo "tls-bulk ratio=$ratio target>=$TARGET $verdict"
else
    echo "Swift: missing ($SWIFT_BIN), no ratio"
fi
