#!/usr/bin/env bash
# Make a development CA and leaf certificates for Cascade's roles.
# Identity lives in exactly one SAN URI per leaf: cascade://<role>/<id>.
# See certs/README.md. Needs the openssl CLI (OpenSSL 3.0 or newer).
set -euo pipefail

PROG=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    cat <<EOF
usage: $PROG [--out DIR] [--days N] [--coordinator ID[=IP,IP...]]
       [--agent ID=IP]... [--agents N --subnets S] [--operator NAME]... [--force]

  --out DIR            output directory (default: $SCRIPT_DIR/dev)
  --days N             leaf validity in days (default: 30); the CA gets 3650
  --coordinator ID[=IP,...]
                       coordinator leaf, SANs URI cascade://coordinator/ID,
                       DNS:localhost and the IPs (default IPs: 127.0.0.1,::1)
  --agent ID=IP        agent leaf, SANs URI cascade://agent/ID and IP:IP
                       (repeatable)
  --agents N --subnets S
                       N agents spread round-robin over S subnets: agent i
                       (1-based) goes to subnet s = (i-1) % S + 1 as its k-th
                       member, k = (i-1) / S + 1; id a<s>-<kk> (k zero-padded
                       to 2 digits), IP 127.0.<s>.<k+10>. Example: a1-01 is
                       127.0.1.11. Needs S <= 254 and k <= 244.
  --operator NAME      operator leaf, SAN URI cascade://operator/NAME
                       (repeatable)
  --force              overwrite existing leaf files
  -h, --help           show this help

With no leaf options it makes the coordinator 'main' and the operator 'dev'.
An existing CA (ca.pem + ca.key) in DIR is reused. IDs and names must match
[A-Za-z0-9._-]{1,64}.
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }
bad_usage() { echo "$PROG: $*" >&2; usage >&2; exit 2; }

OUT="$SCRIPT_DIR/dev"
DAYS=30
FORCE=0
AGENTS_N=""
SUBNETS=""
COORD_SPEC=""
declare -a AGENT_SPECS=() OPERATORS=()

need_arg() { [[ $# -ge 2 && -n $2 ]] || bad_usage "option $1 needs a value"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --out) need_arg "$@"; OUT=$2; shift 2 ;;
        --days) need_arg "$@"; DAYS=$2; shift 2 ;;
        --coordinator) need_arg "$@"; [[ -z $COORD_SPEC ]] || bad_usage "--coordinator given twice"
                       COORD_SPEC=$2; shift 2 ;;
        --agent) need_arg "$@"; AGENT_SPECS+=("$2"); shift 2 ;;
        --agents) need_arg "$@"; AGENTS_N=$2; shift 2 ;;
        --subnets) need_arg "$@"; SUBNETS=$2; shift 2 ;;
        --operator) need_arg "$@"; OPERATORS+=("$2"); shift 2 ;;
        --force) FORCE=1; shift ;;
        *) bad_usage "unknown argument: $1" ;;
    esac
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [[ $((10#$1)) -ge 1 ]]; }
is_uint "$DAYS" || bad_usage "--days must be a positive integer"
DAYS=$((10#$DAYS))
if [[ -n $AGENTS_N || -n $SUBNETS ]]; then
    [[ -n $AGENTS_N && -n $SUBNETS ]] || bad_usage "--agents and --subnets go together"
    is_uint "$AGENTS_N" || bad_usage "--agents must be a positive integer"
    is_uint "$SUBNETS" || bad_usage "--subnets must be a positive integer"
    AGENTS_N=$((10#$AGENTS_N)); SUBNETS=$((10#$SUBNETS))
    (( SUBNETS <= 254 )) || bad_usage "--subnets must be at most 254"
    (( (AGENTS_N + SUBNETS - 1) / SUBNETS <= 244 )) ||
        bad_usage "--agents $AGENTS_N over $SUBNETS subnets needs more than 244 per subnet"
fi

check_id() {  # what, id
    [[ $2 =~ ^[A-Za-z0-9._-]{1,64}$ ]] ||
        bad_usage "invalid $1 '$2': use 1 to 64 characters from [A-Za-z0-9._-]"
}
check_ip() {  # ip
    local ip=$1 IFS=. o
    if [[ $ip =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; then
        for o in $ip; do (( 10#$o <= 255 )) || bad_usage "invalid IPv4 address '$ip'"; done
    elif [[ ! $ip =~ ^[0-9A-Fa-f:.]+$ || $ip != *:* ]]; then
        bad_usage "invalid IP address '$ip'"
    fi
}

# Plan every leaf first (kind|id|sans|ext section), so nothing is written
# when any argument is bad or a file already exists.
declare -a PLAN=()
declare -A SEEN=()
plan() {  # role id sans section
    local key="$1/$2"
    [[ -z ${SEEN[$key]:-} ]] || bad_usage "$1 '$2' given twice"
    SEEN[$key]=1
    PLAN+=("$1|$2|$3|$4")
}

if [[ -z $COORD_SPEC && ${#AGENT_SPECS[@]} -eq 0 && -z $AGENTS_N && ${#OPERATORS[@]} -eq 0 ]]; then
    COORD_SPEC=main
    OPERATORS=(dev)
fi

if [[ -n $COORD_SPEC ]]; then
    cid=${COORD_SPEC%%=*}
    if [[ $COORD_SPEC == *=* ]]; then cips=${COORD_SPEC#*=}; else cips="127.0.0.1,::1"; fi
    check_id "coordinator id" "$cid"
    [[ -n $cips ]] || bad_usage "--coordinator $cid= needs at least one IP"
    sans="URI:cascade://coordinator/$cid,DNS:localhost"
    IFS=, read -r -a ips <<<"$cips"
    for ip in "${ips[@]}"; do check_ip "$ip"; sans+=",IP:$ip"; done
    plan coordinator "$cid" "$sans" leaf_server_client
fi
for spec in ${AGENT_SPECS[@]+"${AGENT_SPECS[@]}"}; do
    [[ $spec == *=* ]] || bad_usage "--agent needs ID=IP, got '$spec'"
    aid=${spec%%=*}; aip=${spec#*=}
    check_id "agent id" "$aid"; check_ip "$aip"
    plan agent "$aid" "URI:cascade://agent/$aid,IP:$aip" leaf_server_client
done
if [[ -n $AGENTS_N ]]; then
    for ((i = 0; i < AGENTS_N; i++)); do
        s=$((i % SUBNETS + 1)); k=$((i / SUBNETS + 1))
        aid=$(printf 'a%d-%02d' "$s" "$k")
        plan agent "$aid" "URI:cascade://agent/$aid,IP:127.0.$s.$((k + 10))" leaf_server_client
    done
fi
for name in ${OPERATORS[@]+"${OPERATORS[@]}"}; do
    check_id "operator name" "$name"
    plan operator "$name" "URI:cascade://operator/$name" leaf_client
done

command -v openssl >/dev/null || die "openssl not found in PATH"
umask 077
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if (( ! FORCE )); then
    for entry in "${PLAN[@]}"; do
        IFS='|' read -r role id _ _ <<<"$entry"
        for f in "$OUT/$role-$id.pem" "$OUT/$role-$id.key"; do
            [[ ! -e $f ]] || die "$f exists (use --force to overwrite)"
        done
    done
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cascade-certs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
CNF="$TMP/openssl.cnf"
# One small config for every invocation; the SAN list comes from the
# environment so the file is written only once.
cat >"$CNF" <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ leaf_server_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${ENV::CASCADE_SAN}
[ leaf_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${ENV::CASCADE_SAN}
EOF
export CASCADE_SAN=URI:unused

run_openssl() {  # args...; quiet unless it fails
    if ! openssl "$@" 2>"$TMP/err"; then
        cat "$TMP/err" >&2
        die "openssl $1 failed"
    fi
}
KEYGEN=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc)

CA_PEM="$OUT/ca.pem"; CA_KEY="$OUT/ca.key"
if [[ -e $CA_PEM || -e $CA_KEY ]]; then
    [[ -f $CA_PEM && -f $CA_KEY ]] || die "found only one of ca.pem / ca.key in $OUT"
    [[ "$(openssl x509 -in "$CA_PEM" -noout -pubkey)" == "$(openssl pkey -in "$CA_KEY" -pubout)" ]] ||
        die "ca.key does not match ca.pem in $OUT"
    echo "reusing CA $CA_PEM"
    CA_STATE=reused
else
    run_openssl req -x509 -new -config "$CNF" -extensions ca_ext "${KEYGEN[@]}" \
        -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -days 3650 -sha256 \
        -subj "/CN=Cascade development CA"
    chmod 600 "$TMP/ca.key"; chmod 644 "$TMP/ca.pem"
    mv -f "$TMP/ca.key" "$CA_KEY"; mv -f "$TMP/ca.pem" "$CA_PEM"
    echo "made $CA_KEY"
    echo "made $CA_PEM"
    CA_STATE=new
fi

declare -A COUNT=([coordinator]=0 [agent]=0 [operator]=0)
for entry in "${PLAN[@]}"; do
    IFS='|' read -r role id sans section <<<"$entry"
    base="$role-$id"
    CASCADE_SAN=$sans run_openssl req -x509 -new -config "$CNF" -extensions "$section" \
        -CA "$CA_PEM" -CAkey "$CA_KEY" "${KEYGEN[@]}" \
        -keyout "$TMP/$base.key" -out "$TMP/$base.pem" -days "$DAYS" -sha256 \
        -subj "/O=Cascade/OU=$role/CN=$id"
    chmod 600 "$TMP/$base.key"; chmod 644 "$TMP/$base.pem"
    mv -f "$TMP/$base.key" "$OUT/$base.key"; mv -f "$TMP/$base.pem" "$OUT/$base.pem"
    echo "made $OUT/$base.key"
    echo "made $OUT/$base.pem"
    COUNT[$role]=$((COUNT[$role] + 1))
done

echo "summary: CA $CA_STATE; ${COUNT[coordinator]} coordinator, ${COUNT[agent]} agent," \
     "${COUNT[operator]} operator certificate(s), valid $DAYS days, in $OUT"
