#!/usr/bin/env bash
# Install what `make demo` and `make test` need from Debian's packages when it is missing:
# python3-venv (for .venv), mosquitto (+ clients) and redis-server. Idempotent; quiet when
# everything is there. Uses sudo when not root; says what to run when it cannot install.
set -euo pipefail

need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)

[ ${#need[@]} -eq 0 ] && exit 0

echo "Installing from Debian's packages: ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
    sudo=(sudo)
else
    echo "Cannot install ${need[*]}: not root and no sudo. Run as root:" >&2
    echo "    apt-get update && apt-get install -y ${need[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "No apt-get here: install ${need[*]} with your system's package manager." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Installing the packages must not start the system-wide services on the standard ports:
# the gateway's tests and demo run their own private servers.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    created_policy=1
fi
trap '[ $created_policy -eq 1 ] && "${sudo[@]}" rm -f "$policy"' EXIT
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
