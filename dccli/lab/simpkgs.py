"""SIMULATION: the catalogue of simulated NVIDIA packages the lab's apt repository holds.

Nothing here is NVIDIA software. Each package carries the name, version and file layout a GPU node's real
package has (so playbooks written for NVIDIA's apt repository run unchanged), a Description that says it is
simulated, and tiny shell stand-ins for the binaries:

- nvidia-driver-<branch>: a marker kernel module under /lib/modules/$(uname -r)/updates/dkms (written by
  postinst, as DKMS would build it), /var/run/reboot-required(.pkgs) when that module changed, the driver
  version in /var/lib/dccli-gpusim/driver_version (read by the lab's GPU simulator, docs/lab.md), a fallback
  nvidia-smi for hosts without the simulator, and nvidia-persistenced (daemon + systemd unit + init script);
- cuda-toolkit-<major>-<minor>: /usr/local/cuda-X.Y with nvcc and version.json;
- datacenter-gpu-manager: nv-hostengine (the nvidia-dcgm service) and dcgmi;
- nvidia-container-toolkit: nvidia-ctk (runtime configure, cdi generate).

Pure data: aptrepo.py turns these specs into .deb files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIM_NOTE = (
    " SIMULATED package built by `dccli lab up` for testing playbooks in the lab.\n"
    " It contains no NVIDIA software: only stand-ins with the real package's name, version and layout."
)
DRIVERS = {"550": ("550.90.07", "550.127.05"), "570": ("570.124.06",)}
CUDA = {"12-4": "12.4.1", "12-8": "12.8.1"}
DCGM_VERSION = "1:3.3.9"
CTK_VERSION = "1.17.3"


@dataclass(frozen=True)
class PackageSpec:
    name: str
    version: str  # Debian version: [epoch:]upstream-revision
    summary: str
    files: tuple[tuple[str, str, int], ...]  # (absolute path, content, mode)
    scripts: tuple[tuple[str, str], ...] = ()  # (postinst|prerm|postrm, content)
    control: tuple[tuple[str, str], ...] = ()  # extra control fields (Depends, Provides...)
    conffiles: tuple[str, ...] = field(default=())

    @property
    def description(self) -> str:
        return f"SIMULATED {self.summary} (dccli lab)\n{SIM_NOTE}"


def _daemon(name: str, what: str) -> str:
    return f"""#!/bin/sh
# SIMULATED {what} (dccli lab): does nothing but run, so that service management can be exercised.
exec sleep infinity
"""


def _init_script(name: str, daemon: str, what: str) -> str:
    # LSB script: what service/update-rc.d use on a host without systemd (lab hosts have no init system).
    pidfile = f"/run/{name}/{name}.pid"
    return f"""#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs $syslog
# Required-Stop:     $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: SIMULATED {what} (dccli lab)
### END INIT INFO
PIDFILE={pidfile}
case "$1" in
  start)
    mkdir -p /run/{name}
    start-stop-daemon --start --quiet --oknodo --background --make-pidfile --pidfile $PIDFILE --startas {daemon}
    ;;
  stop)
    start-stop-daemon --stop --quiet --oknodo --retry 5 --pidfile $PIDFILE --remove-pidfile
    ;;
  restart|force-reload)
    "$0" stop && "$0" start
    ;;
  status)
    if start-stop-daemon --status --pidfile $PIDFILE; then echo "{name} is running"; exit 0; fi
    echo "{name} is not running"; exit 3
    ;;
  *)
    echo "Usage: $0 {{start|stop|restart|force-reload|status}}" >&2; exit 3
    ;;
esac
"""


def _unit(what: str, daemon: str) -> str:
    return f"""[Unit]
Description=SIMULATED {what} (dccli lab)

[Service]
Type=simple
ExecStart={daemon}

[Install]
WantedBy=multi-user.target
"""


FALLBACK_SMI = """#!/bin/sh
# SIMULATED nvidia-smi fallback (dccli lab), used only where the lab's GPU simulator is absent
# (/usr/lib/dccli-gpusim). It knows the installed driver version and nothing else.
v=$(cat /var/lib/dccli-gpusim/driver_version 2>/dev/null)
[ -n "$v" ] || { echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit 9; }
if grep -qs '^nvidia-driver-' /var/run/reboot-required.pkgs; then
  # The new kernel module is installed but the old one is still loaded until the host reboots.
  echo "Failed to initialize NVML: Driver/library version mismatch"; echo "NVML library version: ${v%.*}"; exit 18
fi
case "$*" in
  --version) printf 'NVIDIA-SMI version  : %s\\nNVML version        : %s\\nDRIVER version      : %s\\nSimulated           : dccli lab (no GPU hardware)\\n' "$v" "${v%.*}" "$v" ;;
  *--query-gpu=driver_version*) echo "No devices were found"; exit 6 ;;
  *) echo "No devices were found (SIMULATED nvidia-smi fallback, driver $v)"; exit 6 ;;
esac
"""


def _driver_postinst(pkg: str, version: str) -> str:
    return f"""#!/bin/sh
# SIMULATED: stands in for the DKMS build of NVIDIA's kernel module (dccli lab).
set -e
if [ "$1" = configure ]; then
  dir=/lib/modules/$(uname -r)/updates/dkms
  want="SIMULATED nvidia.ko (dccli lab) version {version}"
  have=$(cat "$dir/nvidia.ko" 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    mkdir -p "$dir"
    printf '%s\\n' "$want" > "$dir/nvidia.ko"
    # The running kernel still has the old module: only a reboot loads this one.
    mkdir -p /var/run
    touch /var/run/reboot-required
    grep -qsx '{pkg}' /var/run/reboot-required.pkgs || echo '{pkg}' >> /var/run/reboot-required.pkgs
  fi
  mkdir -p /var/lib/dccli-gpusim
  echo '{version}' > /var/lib/dccli-gpusim/driver_version
  if [ ! -d /usr/lib/dccli-gpusim ] && [ ! -e /usr/bin/nvidia-smi ]; then
    ln -s /usr/lib/dccli-nvidia-sim/nvidia-smi /usr/bin/nvidia-smi
  fi
fi
exit 0
"""


def _driver_postrm(version: str) -> str:
    # Another branch may already have replaced the module and version file: remove only what is ours.
    return f"""#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
  ko=/lib/modules/$(uname -r)/updates/dkms/nvidia.ko
  grep -qsx 'SIMULATED nvidia.ko (dccli lab) version {version}' "$ko" && rm -f "$ko"
  grep -qsx '{version}' /var/lib/dccli-gpusim/driver_version && rm -f /var/lib/dccli-gpusim/driver_version
  if [ -L /usr/bin/nvidia-smi ] && [ ! -e /usr/lib/dccli-nvidia-sim/nvidia-smi ]; then rm -f /usr/bin/nvidia-smi; fi
fi
exit 0
"""


def driver(branch: str, version: str) -> PackageSpec:
    name = f"nvidia-driver-{branch}"
    daemon = "/usr/bin/nvidia-persistenced"
    what = "NVIDIA persistence daemon"
    return PackageSpec(
        name=name,
        version=f"{version}-0ubuntu1",
        summary=f"NVIDIA driver metapackage, branch {branch}",
        files=(
            ("/usr/lib/dccli-nvidia-sim/nvidia-smi", FALLBACK_SMI, 0o755),
            ("/usr/lib/dccli-nvidia-sim/driver_version", version + "\n", 0o644),
            (daemon, _daemon("nvidia-persistenced", what), 0o755),
            ("/etc/init.d/nvidia-persistenced", _init_script("nvidia-persistenced", daemon, what), 0o755),
            ("/usr/lib/systemd/system/nvidia-persistenced.service", _unit(what, daemon), 0o644),
        ),
        scripts=(("postinst", _driver_postinst(name, version)), ("postrm", _driver_postrm(version))),
        # One driver branch at a time, as with NVIDIA's packages: installing another branch replaces this one.
        control=(
            ("Provides", "nvidia-driver-binary, nvidia-persistenced"),
            ("Conflicts", "nvidia-driver-binary"),
            ("Replaces", "nvidia-driver-binary"),
        ),
        conffiles=("/etc/init.d/nvidia-persistenced",),
    )


def cuda_toolkit(series: str, version: str) -> PackageSpec:
    major_minor = series.replace("-", ".")
    root = f"/usr/local/cuda-{major_minor}"
    nvcc = f"""#!/bin/sh
# SIMULATED nvcc (dccli lab): prints the version banner only.
echo "nvcc: NVIDIA (R) Cuda compiler driver"
echo "Copyright (c) 2005-2025 NVIDIA Corporation"
echo "Built on SIMULATED_by_dccli_lab"
echo "Cuda compilation tools, release {major_minor}, V{version}"
echo "Build cuda_{major_minor}.r{major_minor}/compiler.simulated_0"
"""
    version_json = f'{{\n   "cuda" : {{\n      "name" : "CUDA SDK",\n      "version" : "{version}"\n   }},\n   "simulated" : "dccli lab"\n}}\n'
    return PackageSpec(
        name=f"cuda-toolkit-{series}",
        version=f"{version}-1",
        summary=f"CUDA Toolkit {major_minor} meta-package",
        files=(
            (f"{root}/bin/nvcc", nvcc, 0o755),
            (f"{root}/version.json", version_json, 0o644),
            (f"{root}/lib64/libcudart.so.{major_minor.split('.')[0]}.simulated", "SIMULATED\n", 0o644),
        ),
    )


def dcgm() -> PackageSpec:
    daemon = "/usr/bin/nv-hostengine"
    what = "NVIDIA DCGM host engine"
    upstream = DCGM_VERSION.split(":")[-1]
    dcgmi = f"""#!/bin/sh
# SIMULATED dcgmi (dccli lab): version and a reachability check of the host engine only.
case "$1" in
  -v|--version) echo "Version : {upstream}"; echo "Build Info: SIMULATED by dccli lab" ;;
  *)
    if start-stop-daemon --status --pidfile /run/nvidia-dcgm/nvidia-dcgm.pid; then
      echo "SIMULATED dcgmi: host engine running; no GPUs are simulated by this stand-in"
    else
      echo "Error: unable to establish a connection to the specified host: localhost"
      echo "Error: Unable to connect to host engine. Host engine connection invalid/disconnected."
      exit 255
    fi ;;
esac
"""
    return PackageSpec(
        name="datacenter-gpu-manager",
        version=DCGM_VERSION,
        summary="NVIDIA Data Center GPU Manager (DCGM)",
        files=(
            (daemon, _daemon("nv-hostengine", what), 0o755),
            ("/usr/bin/dcgmi", dcgmi, 0o755),
            ("/etc/init.d/nvidia-dcgm", _init_script("nvidia-dcgm", daemon, what), 0o755),
            ("/usr/lib/systemd/system/nvidia-dcgm.service", _unit(what, daemon), 0o644),
        ),
        conffiles=("/etc/init.d/nvidia-dcgm",),
    )


CTK = r"""#!/bin/sh
# SIMULATED nvidia-ctk (dccli lab): `runtime configure` and `cdi generate` write the files the real
# tool writes (same paths, deterministic content), nothing else.
set -e
case "$1 $2" in
  "--version "*|"-v "*) echo "NVIDIA Container Toolkit CLI version @V@"; echo "commit: SIMULATED" ;;
  "runtime configure")
    shift 2; rt=docker; cfg=""
    for a in "$@"; do case "$a" in --runtime=*) rt=${a#*=} ;; --config=*) cfg=${a#*=} ;; esac; done
    case "$rt" in
      docker) cfg=${cfg:-/etc/docker/daemon.json}; mkdir -p "$(dirname "$cfg")"
        printf '{\n    "runtimes": {\n        "nvidia": {\n            "args": [],\n            "path": "nvidia-container-runtime"\n        }\n    }\n}\n' > "$cfg" ;;
      containerd) cfg=${cfg:-/etc/containerd/config.toml}; mkdir -p "$(dirname "$cfg")"
        printf 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n  BinaryName = "/usr/bin/nvidia-container-runtime"\n' > "$cfg" ;;
      *) echo "unsupported runtime: $rt" >&2; exit 1 ;;
    esac
    echo "INFO[0000] Wrote updated config to $cfg" ;;
  "cdi generate")
    shift 2; out=/dev/stdout
    for a in "$@"; do case "$a" in --output=*) out=${a#*=} ;; esac; done
    drv=$(cat /var/lib/dccli-gpusim/driver_version 2>/dev/null || echo unknown)
    [ "$out" = /dev/stdout ] || mkdir -p "$(dirname "$out")"
    printf '# SIMULATED CDI spec (dccli lab), driver %s\ncdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: all\n  containerEdits: {}\ncontainerEdits: {}\n' "$drv" > "$out" ;;
  *) echo "SIMULATED nvidia-ctk: unsupported command: $*" >&2; exit 1 ;;
esac
"""


def container_toolkit() -> PackageSpec:
    return PackageSpec(
        name="nvidia-container-toolkit",
        version=f"{CTK_VERSION}-1",
        summary="NVIDIA Container Toolkit",
        files=(
            ("/usr/bin/nvidia-ctk", CTK.replace("@V@", CTK_VERSION), 0o755),
            (
                "/usr/bin/nvidia-container-runtime",
                '#!/bin/sh\n# SIMULATED (dccli lab)\nexec runc "$@"\n',
                0o755,
            ),
        ),
    )


def catalogue() -> tuple[PackageSpec, ...]:
    """Every simulated package the lab repository holds, in a stable order."""
    pkgs = [driver(branch, v) for branch, versions in DRIVERS.items() for v in versions]
    pkgs += [cuda_toolkit(series, v) for series, v in CUDA.items()]
    return (*pkgs, dcgm(), container_toolkit())
