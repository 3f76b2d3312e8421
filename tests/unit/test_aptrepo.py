"""The lab's apt repository of simulated NVIDIA packages, checked by the real consumers: dpkg-scanpackages
(the index we write must say what it says), apt-get/apt-cache (in a private sandbox, no lab needed), pip (the
simulated torch wheel), plus the host seeding (overlay whiteouts) and the in-host reboot request."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dccli.errors import LabError
from dccli.lab import aptrepo, rebootd, simpkgs, simwheel


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("repo") / "r"
    aptrepo.build_repo(target, aptrepo.architecture())
    return target


def stanzas(text: str) -> dict[tuple[str, str], dict[str, str]]:
    out = {}
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith(" "):
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        out[(fields["Package"], fields["Version"])] = fields
    return out


def test_every_package_says_it_is_simulated():
    for spec in simpkgs.catalogue():
        assert spec.description.startswith("SIMULATED ") and "no NVIDIA software" in spec.description
        for path, content, _mode in spec.files:
            if content.startswith("#!"):
                assert "SIMULATED" in content, (spec.name, path)


def test_catalogue_has_the_branches_and_versions_playbooks_pin():
    names = {(s.name, s.version) for s in simpkgs.catalogue()}
    assert ("nvidia-driver-550", "550.90.07-0ubuntu1") in names
    assert ("nvidia-driver-550", "550.127.05-0ubuntu1") in names  # a newer point release the pin must skip
    assert ("nvidia-driver-570", "570.124.06-0ubuntu1") in names
    assert {"cuda-toolkit-12-4", "datacenter-gpu-manager", "nvidia-container-toolkit"} <= {
        n for n, _ in names
    }


@pytest.mark.skipif(not shutil.which("dpkg-scanpackages"), reason="dpkg-dev is not installed (make setup)")
def test_packages_index_says_what_dpkg_scanpackages_says(repo: Path):
    ours = stanzas((repo / "apt" / "Packages").read_text())
    scanned = subprocess.run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=repo / "apt",
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    theirs = stanzas(scanned)
    assert ours.keys() == theirs.keys()
    for key, fields in theirs.items():
        for name, value in fields.items():
            assert ours[key].get(name) == value, (key, name)
    assert (
        gzip.decompress((repo / "apt" / "Packages.gz").read_bytes())
        == (repo / "apt" / "Packages").read_bytes()
    )


def test_release_carries_the_index_checksums(repo: Path):
    release = (repo / "apt" / "Release").read_text()
    data = (repo / "apt" / "Packages").read_bytes()
    assert f" {hashlib.sha256(data).hexdigest()} {len(data):>8} Packages\n" in release
    assert f"Architectures: {aptrepo.architecture()}\n" in release


def test_apt_resolves_the_repository_and_its_version_pins(repo: Path, tmp_path: Path):
    """Real apt in a private sandbox (its own sources, lists and cache; the system's dpkg status)."""
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    sources = tmp_path / "sources.list"
    sources.write_text(aptrepo.LabRepo(repo, "x").source_line + "\n")
    opts = ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={tmp_path / 'lists'}", "-o", f"Dir::Cache={tmp_path / 'cache'}",
            "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1"]  # fmt: skip
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, timeout=120)
    assert update.returncode == 0, update.stdout + update.stderr
    policy = subprocess.run(
        ["apt-cache", *opts, "policy", "nvidia-driver-550"], capture_output=True, text=True
    )
    assert "Candidate: 550.127.05-0ubuntu1" in policy.stdout and "550.90.07-0ubuntu1" in policy.stdout
    sim = subprocess.run(["apt-get", *opts, "-s", "install", "nvidia-driver-550=550.90.07-0ubuntu1"],
                         capture_output=True, text=True)  # fmt: skip
    assert sim.returncode == 0 and "Inst nvidia-driver-550 (550.90.07-0ubuntu1" in sim.stdout, sim.stdout


def test_simulated_torch_wheel_installs_with_pip_and_matches_the_pin(repo: Path, tmp_path: Path):
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index",
                          "--find-links", str(repo / "wheels"), "--target", str(target), "torch==2.5.1"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__, torch.SIMULATED)"],
                         env=dict(os.environ, PYTHONPATH=str(target)), capture_output=True, text=True)  # fmt: skip
    assert out.stdout == f"{simwheel.TORCH_VERSION} True\n"


def test_wheel_bytes_are_reproducible(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert (
        simwheel.build_wheel(tmp_path / "a").read_bytes() == simwheel.build_wheel(tmp_path / "b").read_bytes()
    )


def test_content_key_is_stable_and_follows_the_packages():
    specs = simpkgs.catalogue()
    assert aptrepo.content_key(specs, "amd64") == aptrepo.content_key(simpkgs.catalogue(), "amd64")
    assert aptrepo.content_key(specs, "amd64") != aptrepo.content_key(specs, "arm64")
    changed = (*specs[:-1], simpkgs.driver("580", "580.65.06"))
    assert aptrepo.content_key(changed, "amd64") != aptrepo.content_key(specs, "amd64")


def test_ensure_repo_builds_once_then_reuses(tmp_path: Path):
    first = aptrepo.ensure_repo(tmp_path / "cache")
    mtime = (first.apt_dir / "Packages").stat().st_mtime_ns
    again = aptrepo.ensure_repo(tmp_path / "cache")
    assert again == first and (again.apt_dir / "Packages").stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.key]  # no staging dir left behind
    assert stat.S_IMODE(first.apt_dir.stat().st_mode) == 0o755  # apt's _apt user reads file: repositories


def test_a_repository_hosts_cannot_see_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DCCLI_HOME", str(tmp_path / "home"))
    with pytest.raises(LabError, match="under DCCLI_HOME"):
        aptrepo.check_visible(tmp_path / "home" / "repo")
    if os.path.ismount("/dev/shm"):
        with pytest.raises(LabError, match="not on the root filesystem"):
            aptrepo.check_visible(Path("/dev/shm/dccli-repo"))


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts and trusted.* xattrs need root")
def test_host_seed_hides_the_control_nodes_apt_sources_and_lists(tmp_path: Path):
    upper = tmp_path / "upper"
    upper.mkdir()
    aptrepo.seed_host_apt(upper)
    assert os.getxattr(upper / "etc/apt/sources.list.d", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(upper / "var/lib/apt/lists", "trusted.overlay.opaque") == b"y"
    assert (upper / "var/lib/apt/lists/partial").is_dir()
    if os.path.lexists("/etc/apt/sources.list"):
        st = os.lstat(upper / "etc/apt/sources.list")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0  # an overlay whiteout


def test_reboot_request_is_served_once_per_boot(tmp_path: Path):
    lab_dir = tmp_path / "var/lib/dccli-lab"
    lab_dir.mkdir(parents=True)
    (lab_dir / "boot_id").write_text("boot-1\n")
    assert not rebootd.pending(tmp_path)
    (lab_dir / "reboot-request").write_text("boot-1\n")
    assert rebootd.pending(tmp_path)
    (lab_dir / "boot_id").write_text("boot-2\n")  # the host came back: the old request is inert
    assert not rebootd.pending(tmp_path)
