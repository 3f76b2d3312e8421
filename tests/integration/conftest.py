"""Fixtures that bring real labs up and down (needs root: namespaces, mounts, sshd).

- ``lab``: one 8-host lab for the whole session, named t<pid>, under a temporary DCCLI_HOME;
- ``make_lab``: fresh small labs for tests that break things, torn down after the test;
- ``openssh``: runs a command on a lab host with OpenSSH's own client, strict host-key checking on.

Tests marked ``lab`` are skipped, with the reason, where the machine cannot run a lab.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from labssh import ssh_argv

_counter = itertools.count(1)


def lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (namespaces, mounts, sshd)"
    from dccli.lab.preflight import missing_requirements

    problems = missing_requirements()
    return problems[0] if problems else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    for item in items:
        if item.get_closest_marker("lab") is None:
            continue
        reason = reason or lab_skip_reason() or ""
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def project_shares() -> tuple[str, ...]:
    """This checkout and its venv, where the hosts' overlay of / cannot show them (a clone under /tmp, as
    CI may make): training runs on the hosts need the example script and torch."""
    import sys

    from dccli.lab.manager import unseen_by_hosts

    root = Path(__file__).resolve().parents[2]
    return unseen_by_hosts([str(root), sys.prefix])


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DCCLI_HOME for the session, in os.environ so the product code under test sees it."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("dccli-home")
    saved = os.environ.get("DCCLI_HOME")
    os.environ["DCCLI_HOME"] = str(home)
    try:
        yield home
    finally:
        if saved is None:
            os.environ.pop("DCCLI_HOME", None)
        else:
            os.environ["DCCLI_HOME"] = saved


@pytest.fixture(scope="session")
def lab(lab_home: Path):  # -> Iterator[LabInfo]
    from dccli.lab.manager import lab_down, lab_up

    name = f"t{os.getpid()}"
    started = time.monotonic()
    info = lab_up(name, 8, shares=project_shares())  # cleans up after itself if it fails
    print(f"\n[lab] {name}: 8 hosts up in {time.monotonic() - started:.2f}s")
    try:
        yield info
    finally:
        started = time.monotonic()
        lab_down(name)
        print(f"\n[lab] {name}: down in {time.monotonic() - started:.2f}s")


@pytest.fixture
def make_lab(lab_home: Path) -> Iterator[Callable[..., object]]:
    """make_lab(hosts=2) -> LabInfo: a fresh lab this test may break; removed after the test."""
    from dccli.lab.manager import lab_down, lab_up

    created: list[str] = []

    def _make(hosts: int = 2, name: str | None = None, **options):
        name = name or f"f{os.getpid()}-{next(_counter)}"
        created.append(name)
        options.setdefault("shares", project_shares())
        return lab_up(name, hosts, **options)

    yield _make
    for name in created:
        lab_down(name)


@pytest.fixture
def lab_ssh_options() -> Callable[..., list[str]]:
    """lab_ssh_options(lab, "node01") -> the -o/-i options ssh, sftp and scp accept alike."""
    return ssh_argv


@pytest.fixture
def openssh() -> Callable[..., subprocess.CompletedProcess]:
    """openssh(lab, "node01", "hostname") -> CompletedProcess (text), via /usr/bin/ssh."""

    def _run(lab, host_name: str, command: str, input: str | None = None, timeout: float = 30.0):
        argv = ["ssh", *ssh_argv(lab, host_name), f"root@{lab.host(host_name).address}", command]
        return subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    return _run
