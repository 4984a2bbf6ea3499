#!/usr/bin/env bash
# Proves the README's two commands on a fresh machine: a minimal Debian bookworm root made with
# debootstrap (this machine's own apt sources), a clone of this tree's committed state inside
# it, then `bash deploy/dev/demo.sh` (and its stop) and `CI=true bash deploy/dev/test.sh` run
# there as root. Your own machine hides missing installs; this does not.
#
#   deploy/dev/fresh-check.sh [--keep] [--demo-only] [DIR]
#
# DIR defaults to a new directory under /var/tmp. Everything started inside the root is stopped
# and its mounts undone at the end; with --keep the root stays for a look (chroot DIR bash).
# Needs root (debootstrap, chroot, mounts). Exits non-zero when either command fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=0
DEMO_ONLY=0
DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
    --keep) KEEP=1 ;;
    --demo-only) DEMO_ONLY=1 ;;
    -*) echo "fresh-check.sh: unknown option $1" >&2; exit 2 ;;
    *) DIR=$1 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "fresh-check.sh: run as root (debootstrap and chroot)" >&2; exit 2; }
say() { echo "== fresh-check: $*"; }

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# the mirror of this machine's bookworm main (deb822 .sources or one-line .list files)
mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ && /Components:[^\n]*main/ {
               for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i+1); exit } }' "$f"
    done | head -1
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f"
    done | head -1
}
MIRROR=$(mirror | head -1)
[ -n "$MIRROR" ] || { echo "fresh-check.sh: no bookworm mirror in /etc/apt" >&2; exit 1; }

[ -n "$DIR" ] || DIR=$(mktemp -d /var/tmp/pgferry-fresh-XXXXXX)
mkdir -p "$DIR"
# the root's "/" as on a real machine: mktemp makes it 0700, which no service user can traverse
chmod 755 "$DIR"
DIR=$(cd "$DIR" && pwd)

cleanup() {
    local rc=$? p
    # everything still running inside the root is ours (we started it there)
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$DIR" ] && kill -KILL "${p#/proc/}" 2>/dev/null || true
    done
    sleep 1
    for m in dev/shm dev/pts dev sys proc; do
        mountpoint -q "$DIR/$m" 2>/dev/null && umount -l "$DIR/$m" || true
    done
    if [ $KEEP = 1 ]; then
        say "root kept in $DIR"
    else
        rm -rf --one-file-system "$DIR"
    fi
    exit $rc
}
trap cleanup EXIT

t0=$(date +%s)
if [ ! -x "$DIR/usr/bin/apt-get" ]; then
    say "debootstrap --variant=minbase bookworm from $MIRROR into $DIR"
    debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" >"$DIR.debootstrap.log" 2>&1 ||
        { tail -20 "$DIR.debootstrap.log" >&2; exit 1; }
    rm -f "$DIR.debootstrap.log"
fi
# this machine's Debian apt sources and settings (its other repositories need keys the fresh
# root does not have: a fresh machine would not have them either)
rm -f "$DIR/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    grep -q 'debian.org\|debian-archive-keyring' "$f" && cp "$f" "$DIR${f}"
done
for f in /etc/apt/apt.conf.d/*; do
    grep -q '^Acquire::\(http\|https\)::Proxy\|Check-Valid-Until' "$f" 2>/dev/null && cp "$f" "$DIR$f"
done
cp /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
# this machine's own trusted certificate authorities (a network that reaches the npm registry
# through a TLS-inspecting proxy has its authority there): part of the machine, like its apt
# sources; the ca-certificates package takes them in when it is installed
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$DIR/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$DIR/usr/local/share/ca-certificates/"
fi
mount -t proc proc "$DIR/proc"
mount -t sysfs sys "$DIR/sys"
mount --bind /dev "$DIR/dev"
mount -t devpts devpts "$DIR/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
mount -t tmpfs shm "$DIR/dev/shm"

rm -rf "$DIR/root/pgferry"
git -C "$ROOT" rev-parse HEAD >/dev/null
git clone -q "$ROOT" "$DIR/root/pgferry"
say "clone of $(git -C "$DIR/root/pgferry" log -1 --format='%h %s' | cut -c1-80)"

inroot() {
    chroot "$DIR" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 CI=true \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "cd /root/pgferry && $1"
}

rc=0
say "1/2: bash deploy/dev/demo.sh"
if inroot "bash deploy/dev/demo.sh"; then
    say "demo: ok"
else
    say "demo: FAILED"
    rc=1
fi
inroot "bash deploy/dev/demo.sh stop" || true
if [ $rc = 0 ] && [ $DEMO_ONLY = 0 ]; then
    say "2/2: bash deploy/dev/test.sh"
    if inroot "bash deploy/dev/test.sh"; then
        say "tests: ok"
    else
        say "tests: FAILED"
        rc=1
    fi
fi
say "$([ $rc = 0 ] && echo PASSED || echo FAILED) in $(( $(date +%s) - t0 )) s"
exit $rc
