"""The lab's local apt repository of simulated NVIDIA packages (plus a wheelhouse), and apt inside lab hosts.

`dccli lab up` calls ensure_repo() and seed_host_apt():

- ensure_repo() builds, once per content, a flat apt repository (dpkg-deb packages from simpkgs, a Packages
  index and a Release file written here) and a wheelhouse (simwheel) under REPO_ROOT/<content key>/. Hosts
  see the control node's root filesystem as their overlay's lower layer, so a directory there is visible in
  every host read-only-shared, copy-on-write: no server, no bind mount. It must not be under DCCLI_HOME
  (masked inside hosts) nor on a separate filesystem (not part of the lower layer); both are checked.
- seed_host_apt() hides the control node's apt sources and package lists inside a host (overlay whiteout and
  opaque directories in its upper dir): lab hosts have no network, so the only repository apt may use there is
  the one a playbook adds (the lab inventory's `nvidia_apt_repo`). dpkg/apt state changes land in each
  host's upper dir like every other write.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dccli.errors import LabError
from dccli.lab import simpkgs, simwheel

REPO_ROOT_ENV = "DCCLI_LAB_REPO_ROOT"
DEFAULT_REPO_ROOT = Path("/var/cache/dccli-lab/repo")
FORMAT = 1  # bump when the repository layout changes: it is part of the content key
MTIME = 1704067200  # 2024-01-01: fixed file times make the packages reproducible
MAINTAINER = "dccli lab <dccli-lab@localhost>"


@dataclass(frozen=True)
class LabRepo:
    path: Path  # REPO_ROOT/<key>
    key: str

    @property
    def apt_dir(self) -> Path:
        return self.path / "apt"

    @property
    def wheels_dir(self) -> Path:
        return self.path / "wheels"

    @property
    def source_line(self) -> str:
        # Flat repository, like NVIDIA's own (".../repos/debian12/x86_64/ /"); unsigned, hence trusted=yes.
        return f"deb [trusted=yes] file:{self.apt_dir} ./"

    def inventory_vars(self) -> dict[str, object]:
        """What the lab inventory tells the playbooks (playbooks/README.md lists every variable)."""
        return {
            "nvidia_apt_repo": self.source_line,
            "nvidia_apt_key_url": "",
            "python_env_wheelhouse": str(self.wheels_dir),
            # The kernel is shared with the control node: tune files only, never the running kernel.
            "node_tuning_runtime": False,
            "chrony_install": False,
        }


def repo_root() -> Path:
    return Path(os.environ.get(REPO_ROOT_ENV) or DEFAULT_REPO_ROOT)


def architecture() -> str:
    proc = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError("dpkg --print-architecture failed: the lab's apt repository needs dpkg")
    return proc.stdout.strip()


def content_key(specs: Iterable[simpkgs.PackageSpec], arch: str) -> str:
    """Same packages, wheel and builder -> same key -> the repository built earlier is reused. The builder's
    own source is part of the key, so a change to how the repository is written never reuses a stale one."""
    text = repr((FORMAT, arch, tuple(specs), simwheel.wheel_files("torch", simwheel.TORCH_VERSION)))
    digest = hashlib.sha256(text.encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def control_text(spec: simpkgs.PackageSpec, arch: str, installed_kib: int) -> str:
    fields = [
        ("Package", spec.name),
        ("Version", spec.version),
        ("Architecture", arch),
        ("Maintainer", MAINTAINER),
        ("Installed-Size", str(installed_kib)),
        *spec.control,
        ("Section", "non-free/libs"),
        ("Priority", "optional"),
        ("Description", spec.description),
    ]
    return "".join(f"{k}: {v}\n" for k, v in fields)


def _write_tree(root: Path, spec: simpkgs.PackageSpec, arch: str) -> None:
    size = 0
    for path, content, mode in spec.files:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        os.chmod(target, mode)
        size += len(content.encode())
    debian = root / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(control_text(spec, arch, max(1, (size + 1023) // 1024)))
    if spec.conffiles:
        (debian / "conffiles").write_text("".join(c + "\n" for c in spec.conffiles))
    for name, content in spec.scripts:
        (debian / name).write_text(content)
        os.chmod(debian / name, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in [*dirnames, *filenames]:
            os.utime(os.path.join(dirpath, name), (MTIME, MTIME), follow_symlinks=False)


def build_deb(spec: simpkgs.PackageSpec, arch: str, out_dir: Path, work: Path) -> Path:
    """dpkg-deb --build the package into out_dir; returns the .deb's path."""
    tree = work / f"{spec.name}_{spec.version}"
    _write_tree(tree, spec, arch)
    upstream = spec.version.split(":")[-1]
    deb = out_dir / f"{spec.name}_{upstream}_{arch}.deb"
    proc = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
        capture_output=True,
        text=True,
        env=dict(os.environ, SOURCE_DATE_EPOCH=str(MTIME)),
    )
    if proc.returncode != 0:
        raise LabError(f"dpkg-deb failed for {spec.name}: {(proc.stderr or proc.stdout).strip()}")
    return deb


def _digests(data: bytes) -> tuple[str, str, str]:
    return hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest()


def packages_entry(control: str, filename: str, data: bytes) -> str:
    """One stanza of a Packages index: the control fields plus where the .deb is and its checksums."""
    md5, sha1, sha256 = _digests(data)
    head, sep, desc = control.partition("Description:")
    extra = f"Filename: {filename}\nSize: {len(data)}\nMD5sum: {md5}\nSHA1: {sha1}\nSHA256: {sha256}\n"
    return head + extra + sep + desc


def release_text(indexes: dict[str, bytes], arch: str) -> str:
    lines = [
        "Origin: dccli-lab",
        "Label: dccli lab SIMULATED NVIDIA packages",
        f"Architectures: {arch}",
        "Date: Mon, 01 Jan 2024 00:00:00 UTC",
        "Description: SIMULATED packages for testing GPU-node playbooks in the dccli lab (no NVIDIA software)",
    ]
    for title, pick in (("MD5Sum", 0), ("SHA1", 1), ("SHA256", 2)):
        lines.append(f"{title}:")
        for name, data in sorted(indexes.items()):
            lines.append(f" {_digests(data)[pick]} {len(data):>8} {name}")
    return "\n".join(lines) + "\n"


def build_repo(target: Path, arch: str, specs: Iterable[simpkgs.PackageSpec] | None = None) -> None:
    """Build the apt repository (target/apt) and wheelhouse (target/wheels) into an empty directory."""
    apt_dir, wheels = target / "apt", target / "wheels"
    apt_dir.mkdir(parents=True)
    wheels.mkdir()
    stanzas = []
    with tempfile.TemporaryDirectory(prefix="dccli-aptrepo-") as work:
        for spec in specs if specs is not None else simpkgs.catalogue():
            deb = build_deb(spec, arch, apt_dir, Path(work))
            control = subprocess.run(
                ["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True
            ).stdout
            stanzas.append(packages_entry(control, f"./{deb.name}", deb.read_bytes()))
    packages = "\n".join(stanzas).encode()
    (apt_dir / "Packages").write_bytes(packages)
    packages_gz = gzip.compress(packages, mtime=0)
    (apt_dir / "Packages.gz").write_bytes(packages_gz)
    (apt_dir / "Release").write_text(release_text({"Packages": packages, "Packages.gz": packages_gz}, arch))
    simwheel.build_wheel(wheels)
    (target / "README").write_text(
        "SIMULATED NVIDIA packages and wheels built by `dccli lab up` (dccli/lab/aptrepo.py).\n"
        "Nothing here is NVIDIA or PyTorch software. Safe to delete: the next `lab up` rebuilds it.\n"
    )
    for dirpath, _dirnames, filenames in os.walk(target):
        os.chmod(dirpath, 0o755)  # apt reads file: repositories as the unprivileged _apt user
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def check_visible(root: Path) -> None:
    """Refuse a place lab hosts cannot see: under DCCLI_HOME (masked) or off the root filesystem."""
    from dccli.lab.host import hidden_paths

    real = os.path.realpath(root)
    for hidden in hidden_paths():
        if real == hidden or real.startswith(hidden.rstrip("/") + "/"):
            raise LabError(f"lab apt repository {root} is under DCCLI_HOME, which lab hosts cannot see")
    probe = Path(real)
    while not probe.exists():
        probe = probe.parent
    if probe.stat().st_dev != Path("/").stat().st_dev:
        raise LabError(
            f"lab apt repository {root} is not on the root filesystem, which is all lab hosts see: "
            f"set {REPO_ROOT_ENV} to a directory on /"
        )


def ensure_repo(root: Path | None = None) -> LabRepo:
    """The repository for the current catalogue: reused if already built, else built and moved into place
    atomically (two labs starting at once both build; the first rename wins, the other is dropped)."""
    root = root or repo_root()
    check_visible(root)
    arch = architecture()
    specs = simpkgs.catalogue()
    key = content_key(specs, arch)
    final = root / key
    if (final / "apt" / "Release").is_file():
        return LabRepo(final, key)
    root.mkdir(parents=True, exist_ok=True)
    for parent in (root, *root.parents):
        if parent == Path("/"):
            break
        with contextlib.suppress(OSError):
            os.chmod(parent, os.stat(parent).st_mode | 0o755)  # world-traversable for apt's _apt user
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        build_repo(staging, arch, specs)
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / "apt" / "Release").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return LabRepo(final, key)


def _whiteout(path: Path) -> None:
    """Hide path's lower-layer counterpart (an overlay whiteout is a 0:0 character device)."""
    if not os.path.lexists(path):
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _opaque_dir(path: Path, like: Path) -> None:
    """An empty directory that hides everything below its lower-layer counterpart."""
    path.mkdir(exist_ok=True)
    st = like.stat() if like.exists() else None
    os.chmod(path, stat.S_IMODE(st.st_mode) if st else 0o755)
    if st:
        os.chown(path, st.st_uid, st.st_gid)
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def seed_host_apt(upper: Path) -> None:
    """Inside the host: no apt sources and no package lists from the control node (which point at network
    mirrors the lab must never reach). Called before the host's overlay is mounted."""
    from dccli.lab.host import mkdirs_like_lower

    etc_apt = mkdirs_like_lower(upper, "etc/apt")
    if os.path.lexists("/etc/apt/sources.list"):
        _whiteout(etc_apt / "sources.list")
    _opaque_dir(etc_apt / "sources.list.d", Path("/etc/apt/sources.list.d"))
    apt_lib = mkdirs_like_lower(upper, "var/lib/apt")
    lists = apt_lib / "lists"
    _opaque_dir(lists, Path("/var/lib/apt/lists"))
    cache = mkdirs_like_lower(upper, "var/cache/apt")
    for name in ("pkgcache.bin", "srcpkgcache.bin"):  # built from the hidden lists: apt rebuilds them
        if os.path.lexists(Path("/var/cache/apt") / name):
            _whiteout(cache / name)
    partial = Path("/var/lib/apt/lists/partial")
    (lists / "partial").mkdir(exist_ok=True)
    if partial.exists():
        st = partial.stat()
        os.chmod(lists / "partial", stat.S_IMODE(st.st_mode))
        os.chown(lists / "partial", st.st_uid, st.st_gid)
