# dccli health probe. Runs ON a host as: sh -c "$THIS" dccli-health NONCE GPU NVLINK KLOG SMI_TIMEOUT [SERVICE...]
# (dccli/health/shprobe.py builds that command from validated values and parses what this prints).
# POSIX sh and the host's own tools only: date, tail, df, gzip; nvidia-smi, dmesg, chronyc, timedatectl,
# systemctl, ibstat where present. No python3 needed, and a probe costs a host ~12.5 ms of CPU where the
# Python helper cost ~21.5 ms (docs/ARCHITECTURE.md, "The health probe is a shell script").
# Raw sources only, each after a line "@@NONCE KIND NAME...": nothing is judged here.
N=$1 GPU=$2 NVLINK=$3 KLOG=$4 SMI_TIMEOUT=$5
shift 5
# Untranslated output (df's header, dates, messages): a host's default locale may be any language.
LC_ALL=C
export LC_ALL
# First and at once, uncompressed: the control node brackets this line's arrival for the clock skew.
date "+@@$N clock %s.%N"
exec </dev/null
if command -v gzip >/dev/null 2>&1; then Z="gzip -1"; echo "@@$N gz"; else Z=cat; echo "@@$N plain"; fi

# x NAME CMD...: "out NAME", the command's stdout, then "rc NAME RC" and its stderr. Returns RC.
x() {
  _n=$1
  shift
  printf '\n@@%s out %s\n' "$N" "$_n"
  _e=$("$@" 2>&1 >&3 3>&-)
  _r=$?
  printf '\n@@%s rc %s %s\n%s' "$N" "$_n" "$_r" "$_e"
  return $_r
}
have() { command -v "$1" >/dev/null 2>&1; }

{
  exec 3>&1
  # boot_id, memory, load, btime and online CPUs; every process's stat (zombies, names for services).
  x files tail -n +1 /proc/sys/kernel/random/boot_id /proc/meminfo /proc/loadavg /proc/stat /proc/[0-9]*/stat
  # Space and inodes per real file system (df leaves out proc, sysfs... and bind mounts of one device).
  printf '\n@@%s err df\n' "$N"
  o=$(df -B1 --output=fstype,size,used,avail,itotal,iavail,target 2>&3)
  case $o in
  Type*) printf '\n@@%s out df\n%s\n' "$N" "$o" ;;
  *) x dfk df -P -k ;; # busybox, coreutils before 8.21: no --output, so no inodes
  esac
  if [ -e /var/run/reboot-required ] || [ -e /run/reboot-required ]; then printf '\n@@%s flag reboot\n' "$N"; fi
  smi=
  if [ "$GPU" = 1 ]; then smi=$(command -v nvidia-smi); fi
  if [ -n "$smi" ]; then
    # A wedged GPU can hang nvidia-smi for minutes: bounded, so the hang itself is the finding.
    t=
    if have timeout; then t="timeout -k 5 $SMI_TIMEOUT"; fi
    printf '\n@@%s err smi\n' "$N"
    o=$($t "$smi" -q -x 2>&3)
    r=$?
    printf '\n@@%s out smi %s %s\n%s\n' "$N" "$r" "${t:+timeout $SMI_TIMEOUT}" "$o"
    case $o in
    *'<pid>'*)
      # The GPU processes' DCCLI_RUN_ID (processes that belong to no dccli run are a finding).
      p=$(printf '%s\n' "$o" | sed -n 's:.*<pid>\([0-9][0-9]*\)</pid>.*:\1:p')
      e=
      printf '\n@@%s pids\n' "$N"
      for i in $p; do
        if [ -r "/proc/$i/environ" ]; then
          e="$e /proc/$i/environ"
          printf '%s\n' "$i"
        else
          printf '%s ?\n' "$i"
        fi
      done
      if [ -n "$e" ]; then x env grep -a -z -H '^DCCLI_RUN_ID=' $e; fi
      ;;
    esac
    if [ "$NVLINK" = 1 ] && [ "$r" = 0 ]; then x nvlink $t "$smi" nvlink -s; fi
  fi
  if [ "$KLOG" = 1 ] && { [ -n "$smi" ] || [ -d /proc/driver/nvidia ]; }; then
    # Old util-linux or busybox: raw timestamps, placed with /proc/stat's btime; no dmesg: the journal.
    x log dmesg --time-format iso || x log dmesg || { have journalctl && x log journalctl -k -b -o short-iso --no-pager; }
  fi
  if have chronyc; then x chrony chronyc -n tracking; fi
  systemd=
  if [ -d /run/systemd/system ]; then systemd=1; fi
  if [ -n "$systemd" ] && have timedatectl; then x timedatectl timedatectl show; fi
  if [ $# -gt 0 ]; then
    if [ -n "$systemd" ] && have systemctl; then x services systemctl is-active "$@"; fi
  fi
  if [ -d /sys/class/infiniband ]; then
    b=/sys/class/infiniband/*/ports/*
    x ib grep -H -s '' $b/state $b/phys_state $b/rate $b/link_layer
  elif have ibstat; then
    x ibstat ibstat
  fi
  printf '\n@@%s end\n' "$N"
} | $Z
