#!/usr/bin/env bash
# Checks what Cascade needs from the system and installs what is missing (as root, with
# apt-get). Without root it prints the exact command and fails. Says what it did.
set -euo pipefail

missing=()
have_header() { [ -f "/usr/include/$1" ] || [ -f "/usr/include/x86_64-linux-gnu/$1" ] || [ -f "/usr/include/aarch64-linux-gnu/$1" ]; }
have_header openssl/ssl.h || missing+=(libssl-dev)
have_header sqlite3.h || missing+=(libsqlite3-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v cc >/dev/null 2>&1 || missing+=(gcc)

if ! command -v swift >/dev/null 2>&1; then
    echo "deps: the Swift toolchain (6.x) is not on PATH; install it from swift.org and retry." >&2
    exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: ok (libssl-dev, libsqlite3-dev, pkg-config, openssl, cc, $(swift --version 2>/dev/null | head -1))"
    exit 0
fi

command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing ${missing[*]}. Install them with:" >&2
    echo "  sudo sh -c '$command'" >&2
    exit 1
fi
echo "deps: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps: installed ${missing[*]}"
