#!/usr/bin/env bash
# Checks what Cascade needs from the system and installs what is missing (as root, with
# apt-get). Without root it prints the exact command and fails. Says what it did.
#
# Test tools, installed when asked (`make test` asks; `make deps TEST_TOOLS=1`, or
# `scripts/deps.sh --test-tools`): promtool (Debian package prometheus), which checks the
# /metrics scrapes, and chromium, which renders the status page headless. Plain `make deps`
# (and `make demo`) leave them out: chromium is about 125 MB to download. They are installed
# with the Prometheus server kept from starting (policy-rc.d). If they cannot be installed
# (no root, no network), make test goes on and the tests that use them say why they skipped.
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
    echo "deps: test tools present (promtool, chromium)"
elif [ -z "$test_tools" ]; then
    echo "deps: test tools missing: ${optional[*]} (\`make test\` installs them; the tests that use them skip without)"
fi

install_packages() {  # packages... ; as root
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "$@"
}

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: ok (libssl-dev, libsqlite3-dev, pkg-config, openssl, cc, $(swift --version 2>/dev/null | head -1))"
else
    command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing ${missing[*]}. Install them with:" >&2
        echo "  sudo sh -c '$command'" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]} with apt-get"
    install_packages "${missing[@]}"
    echo "deps: installed ${missing[*]}"
fi

# The test tools: best effort. A failure here only means those tests skip, with a reason.
if [ -n "$test_tools" ] && [ ${#optional[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: test tools ${optional[*]} are missing and this is not root; their tests will skip" \
            "(install with: sudo apt-get install --no-install-recommends ${optional[*]})"
        exit 0
    fi
    echo "deps: installing test tools ${optional[*]} with apt-get (chromium is about 125 MB)"
    # Keep any packaged service (the Prometheus server) from being started: only promtool is used.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1; fi
    if install_packages "${optional[@]}"; then
        echo "deps: installed test tools ${optional[*]}"
    else
        echo "deps: could not install ${optional[*]}; the tests that use them will skip and say so" >&2
    fi
    [ -n "$made_policy" ] && rm -f "$policy"
fi
exit 0
