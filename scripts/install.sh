#!/usr/bin/env bash
# make install: copies the programs, the systemd units (with their paths filled in from the
# variables below, the one place they are set) and an example coordinator configuration.
#
#   PREFIX      /usr/local            programs go to PREFIX/bin
#   UNITDIR     PREFIX/lib/systemd/system
#   SYSCONFDIR  /etc                  the coordinator reads SYSCONFDIR/cascade/coordinator.conf
#   STATEDIR    /var/lib/cascade      the coordinator's data directory
#   AGENT_ROOT  /opt/cascade          the agent pair's root (releases, state, fleet.conf)
#   USER        cascade               the account both units run as
#   DESTDIR     (empty)               staging directory prepended to every path (packaging)
#   BIN         .build/release        where the built programs are
#
# It writes nothing outside DESTDIR+those paths, creates no account and starts nothing; it
# prints what it installed and the commands that finish the job.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
BINDIR=$PREFIX/bin
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SYSCONFDIR=${SYSCONFDIR:-/etc}
STATEDIR=${STATEDIR:-/var/lib/cascade}
AGENT_ROOT=${AGENT_ROOT:-/opt/cascade}
USER_NAME=${USER_NAME:-cascade}
DESTDIR=${DESTDIR:-}
BIN=${BIN:-$REPO/.build/release}

for path in "$PREFIX" "$UNITDIR" "$SYSCONFDIR" "$STATEDIR" "$AGENT_ROOT"; do
    case $path in
        /*) ;;
        *) echo "install: $path is not an absolute path" >&2; exit 2 ;;
    esac
    case $path in
        *@*|*\|*) echo "install: $path may not contain '@' or '|'" >&2; exit 2 ;;
    esac
done
for tool in cascade-coordinator cascade-agent cascade-upgrader cascadectl; do
    [ -x "$BIN/$tool" ] || { echo "install: $BIN/$tool is missing; run 'make install' (it builds them) or set BIN" >&2; exit 1; }
done

fill() {  # template -> destination, with every @NAME@ replaced
    local from=$1 to=$2
    mkdir -p "$(dirname "$to")"
    sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" -e "s|@STATEDIR@|$STATEDIR|g" \
        -e "s|@AGENT_ROOT@|$AGENT_ROOT|g" -e "s|@USER@|$USER_NAME|g" "$from" >"$to.tmp"
    if grep -q '@[A-Z_]*@' "$to.tmp"; then
        echo "install: $from has a placeholder this script does not know" >&2
        rm -f "$to.tmp"
        exit 1
    fi
    mv "$to.tmp" "$to"
    echo "installed $to"
}

mkdir -p "$DESTDIR$BINDIR"
for tool in cascade-coordinator cascade-agent cascade-upgrader cascadectl; do
    install -m 0755 "$BIN/$tool" "$DESTDIR$BINDIR/$tool"
    echo "installed $DESTDIR$BINDIR/$tool"
done
fill "$REPO/scripts/systemd/cascade-coordinator.service.in" "$DESTDIR$UNITDIR/cascade-coordinator.service"
fill "$REPO/scripts/systemd/cascade-agent.service.in" "$DESTDIR$UNITDIR/cascade-agent.service"
fill "$REPO/scripts/systemd/coordinator.conf.example.in" "$DESTDIR$SYSCONFDIR/cascade/coordinator.conf.example"
chmod 0644 "$DESTDIR$UNITDIR"/cascade-*.service "$DESTDIR$SYSCONFDIR/cascade/coordinator.conf.example"

# Shell completion, when this cascadectl can generate it.
if completion=$("$BIN/cascadectl" completion bash 2>/dev/null); then
    mkdir -p "$DESTDIR$PREFIX/share/bash-completion/completions"
    printf '%s\n' "$completion" >"$DESTDIR$PREFIX/share/bash-completion/completions/cascadectl"
    echo "installed $DESTDIR$PREFIX/share/bash-completion/completions/cascadectl"
fi

cat <<EOF

Next steps (as root):
  useradd --system --home $STATEDIR --shell /usr/sbin/nologin $USER_NAME
  install -d -o $USER_NAME -m 0700 $STATEDIR
  cp $SYSCONFDIR/cascade/coordinator.conf.example $SYSCONFDIR/cascade/coordinator.conf   # then edit it
  systemctl daemon-reload && systemctl enable --now cascade-coordinator
On each agent host: $BINDIR/cascade-agent install --root $AGENT_ROOT BUNDLE, write $AGENT_ROOT/fleet.conf,
  then systemctl enable --now cascade-agent
EOF
