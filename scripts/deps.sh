#!/usr/bin/env bash
# Checks what Cascade needs from the system and installs what is missing (as root, with
# apt-get). Without root it prints the exact command and fails. Says what it did.
#
# Optional test tools, installed only when asked (`make deps TEST_TOOLS=1`, or
# `scripts/deps.sh --test-tools`): promtool (Debian package prometheus), which checks the
# /metrics scrapes, and chromium, which renders the status page headless. They are not
# installed by default: chromium is about 125 MB to download (over 400 MB installed), and the
# prometheus package brings a Prometheus server that systemd starts. Without them the tests
# that use them print why they skipped; everything else runs.
set -euo pipefail

test_tools=${TEST_TOOLS:-}
for argument in "$@"; do
    case "$argument" in
        --test-tools) test_tools=1 ;;
        *) echo "deps: unknown argument $argument (known: --test-tools)" >&2; exit 2 ;;
    esac
done
[ "$test_tools" = 0 ] && test_tools=

missing=()
have_header() { [ -f "/usr/include/$1" ] || [ -f "/usr/include/x86_64-linux-gnu/$1" ] || [ -f "/usr/include/aarch64-linux-gnu/$1" ]; }
have_header openssl/ssl.h || missing+=(libssl-dev)
have_header sqlite3.h || missing+=(libsqlite3-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v cc >/dev/null 2>&1 || missing+=(gcc)

optional=()
command -v promtool >/dev/null 2>&1 || optional+=(prometheus)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || optional+=(chromium)

if ! command -v swift >/dev/null 2>&1; then
    echo "deps: the Swift toolchain (6.x) is not on PATH; install it from swift.org and retry." >&2
    exit 1
fi

if [ ${#optional[@]} -eq 0 ]; then
    echo "deps: optional test tools present (promtool, chromium)"
elif [ -n "$test_tools" ]; then
    missing+=("${optional[@]}")
else
    echo "deps: optional test tools missing: ${optional[*]} (the tests that use them skip with a reason;" \
        "\`make deps TEST_TOOLS=1\` installs them, about 150 MB to download)"
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
case " ${missing[*]} " in
    *" prometheus "*) echo "deps: the tests need only promtool from prometheus; its server is not needed (systemctl disable --now prometheus stops it)" ;;
esac
