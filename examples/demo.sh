#!/usr/bin/env bash
# The main job on a lab cluster: bring it up, show the inventory, run commands across it, show facts.
set -euo pipefail
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }

dccli lab down --name demo >/dev/null 2>&1 || true   # a previous demo's lab: start clean
step dccli lab up --hosts 8 --name demo
DCCLI_INVENTORY=$(dccli lab inventory --name demo)
export DCCLI_INVENTORY
step dccli inventory validate
step dccli inventory show
step dccli nodeset -f 'node[01-08]!node03'
step dccli run -l 'node[01-04]' 'echo "$(hostname) runs $(uname -r)"'
step dccli run -b 'grep PRETTY_NAME /etc/os-release'
step dccli facts
echo >&2
echo "The lab stays up for you: DCCLI_INVENTORY=$DCCLI_INVENTORY dccli run -b uptime" >&2
echo "Tear it down with: $(pwd)/.venv/bin/dccli lab down --name demo" >&2
