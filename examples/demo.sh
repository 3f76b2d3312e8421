#!/usr/bin/env bash
# The main job on a lab cluster: bring it up, show the inventory, run commands, facts, key rotation, a DDP run,
# simulated GPU faults found by health checks, backups and a restore, provisioning and a driver upgrade.
set -euo pipefail
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }

dccli lab down --name demo >/dev/null 2>&1 || true   # a previous demo's lab: start clean
# A checkout the hosts' overlay of / cannot show (under /tmp, another filesystem) is bound in read-only.
SHARES=()
while IFS= read -r path; do [ -n "$path" ] && SHARES+=(--share "$path"); done < <(python -c \
    'import sys; from dccli.lab.manager import unseen_by_hosts; print("\n".join(unseen_by_hosts(sys.argv[1:] + [sys.prefix])))' "$(pwd)")
step dccli lab up --hosts 8 --gpus 8 --gpu-model H100-SXM5-80GB --name demo "${SHARES[@]}"   # SIMULATED GPUs
DCCLI_INVENTORY=$(dccli lab inventory --name demo)
export DCCLI_INVENTORY
step dccli inventory validate
step dccli inventory show
step dccli nodeset -f 'node[01-08]!node03'
step dccli run -l 'node[01-04]' 'echo "$(hostname) runs $(uname -r)"'
step dccli run -b 'grep PRETTY_NAME /etc/os-release'
step dccli facts
step dccli keys rotate                      # new key: added, proven by a fresh login, only then the old one removed
step dccli keys status
# A 2-node DDP run (torch from the `train` extra): lab hosts cannot see a venv interpreter under /root, so use
# the system python3 with this venv's packages then (docs/train.md, "In the lab").
if python -c 'import torch' 2>/dev/null; then
    PY=$(python -c 'import sys; print(sys.executable)')
    case "$(readlink -f "$PY")" in
        /root/*) NODEPY=(--python /usr/bin/python3 --env "PYTHONPATH=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')") ;;
        *) NODEPY=(--python "$PY") ;;
    esac
    step dccli train launch --nodes 'node[01-02]' --nproc-per-node 2 --name demo-ddp "${NODEPY[@]}" \
        "$(pwd)/examples/ddp_tiny.py" --steps 200
    step dccli train show demo-ddp
fi
step dccli run -l node01 'nvidia-smi --query-gpu=index,name,temperature.gpu,ecc.errors.uncorrected.aggregate.total --format=csv'
step dccli lab fault node02 --gpu 3 --fell-off-bus --name demo   # a simulated Xid 79: the GPU is lost until a reboot
step dccli run -l node02 'nvidia-smi -L; dmesg | grep -F "NVRM: Xid" || true'
step dccli lab reboot node02 --name demo
step dccli run -l node02 'nvidia-smi -L | wc -l'
# Health: two simulated faults, found by `dccli health` (docs/health.md), shown by `dccli status`, then cleared.
step dccli lab fault node05 --gpu 1 --ecc-dbe 2 --name demo   # double-bit ECC errors (+ an Xid 48 line)
step dccli lab fault node06 --gpu 4 --temp 93 --name demo     # a hot, throttling GPU
step dccli health || true                   # exit 1: node05 gpu.ecc + gpu.xid CRIT, node06 gpu.temperature CRIT
step dccli health --format nagios || true   # one line, exit 2 (CRITICAL)
step dccli status                           # racks as panels: reachability, GPUs, health, runs, backups, keys
step dccli lab fault node05 --clear --name demo
step dccli lab fault node06 --clear --name demo
step dccli health --since 1h || true        # what changed: node05 and node06 back to OK
# Backups with restic (docs/backup.md): an sftp repository on node08, checkpoints of node01-02 backed up.
BACKUP_INV="$(dirname "$DCCLI_INVENTORY")/backup-demo.yml"
{ cat "$DCCLI_INVENTORY"; cat <<'YAML'
backup:
  repositories:
    demo: {url: "sftp:node08:/srv/restic/demo"}
  profiles:
    ckpt:
      hosts: "node[01-02]"
      repository: demo
      paths: [/data/ckpt]
      checkpoints: {dirs: [/data/ckpt], marker: COMPLETE}
      retention: {keep_last: 3}
YAML
} > "$BACKUP_INV"
step dccli run -l 'node[01-02]' 'mkdir -p /data/ckpt/step-100 /data/ckpt/step-200 && head -c 20000000 /dev/urandom > /data/ckpt/step-100/model.pt && touch /data/ckpt/step-100/COMPLETE && head -c 1000 /dev/urandom > /data/ckpt/step-200/model.pt'
step dccli backup run -i "$BACKUP_INV"     # step-200 has no COMPLETE marker: skipped and reported
step dccli backup ls -i "$BACKUP_INV"
step dccli backup restore latest --host node01 --target /restore -i "$BACKUP_INV"
step dccli run -l node01 'cmp /data/ckpt/step-100/model.pt /restore/data/ckpt/step-100/model.pt && echo restored: identical'
# Provisioning (docs/provision.md): the plain Ansible benchmark playbook, unchanged; the re-run changes 2 tasks
# per host by design (its copy and lineinfile undo each other, as under ansible-playbook).
REF_PB="$(pwd)/../shared/bench/reference-10-tasks.yml"
if [ -f "$REF_PB" ]; then
  step dccli provision "$REF_PB"
  step dccli provision --check --diff -l node01 "$REF_PB"
fi
# GPU-node playbooks (docs/playbooks.md) on the lab's local apt repository of SIMULATED NVIDIA packages:
# driver 550 (pinned, held; each host reboots once for the new kernel module) and CUDA, then a driver branch
# upgrade to 570 rolling 4 hosts at a time through real apt and dpkg, with the lab's reboot.
step dccli provision playbooks/nvidia-driver.yml playbooks/cuda-toolkit.yml
step dccli run -b 'nvidia-smi --query-gpu=driver_version --format=csv,noheader | sort -u'
step dccli provision playbooks/nvidia-driver.yml -e nvidia_driver_branch=570 -e nvidia_driver_version=570.124.06 \
    -e nvidia_driver_serial=4
step dccli run -b 'nvidia-smi --query-gpu=driver_version --format=csv,noheader | sort -u; apt-mark showhold'
echo >&2
echo "The lab stays up for you: DCCLI_INVENTORY=$DCCLI_INVENTORY dccli run -b uptime" >&2
echo "Tear it down with: $(pwd)/.venv/bin/dccli lab down --name demo" >&2
