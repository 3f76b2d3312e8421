"""Exporters checked by the real consumers: ansible-inventory reads the Ansible export, `ssh -G` the ssh_config."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dccli.inventory.export import export_ansible, export_json, export_ssh_config, jump_chain
from dccli.inventory.loader import load, localhost_inventory
from dccli.inventory.model import Inventory, thaw

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "inventories" / "good"
SOURCES = [
    ROOT / "inventory" / "example.yml",
    DATA / "groups_forms.yml",
    DATA / "local_and_jumps.yml",
    DATA / "ranges_2d.yml",
    DATA / "ipv6_and_dns.yml",
    DATA / "anchors_merge.yml",
]
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def expected_ansible_hostvars(inv: Inventory, name: str) -> dict[str, Any]:
    host = inv.host(name)
    want: dict[str, Any] = {
        "ansible_host": host.address,
        "ansible_port": host.port,
        "ansible_user": host.user,
    }
    if host.connection == "local":
        want["ansible_connection"] = "local"
    else:
        if host.identity_file:
            want["ansible_ssh_private_key_file"] = host.identity_file
        args = []
        chain = jump_chain(inv, host)
        if chain:
            args.append(f"-o ProxyJump={chain}")
        if inv.defaults.known_hosts:
            args.append(f"-o 'UserKnownHostsFile={inv.defaults.known_hosts} ~/.ssh/known_hosts'")
        if args:
            want["ansible_ssh_common_args"] = " ".join(args)
    want.update(thaw(host.vars))
    return want


def ansible_list(tmp_path: Path, text: str, *extra: str) -> dict[str, Any]:
    path = tmp_path / "hosts.yml"
    path.write_text(text, encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_INVENTORY_ENABLED": "yaml",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",  # a file Ansible cannot read must fail, not warn
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(path), "--list", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not ANSIBLE_INVENTORY.exists(), reason="ansible-core not installed in this environment")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_ansible_export_read_by_ansible_inventory(tmp_path: Path, source: Path) -> None:
    inv = load(source)
    listed = ansible_list(tmp_path, export_ansible(inv))
    hostvars = listed["_meta"]["hostvars"]
    assert sorted(hostvars) == sorted(inv.names())
    for name in inv.names():
        assert hostvars[name] == expected_ansible_hostvars(inv, name), name
    for group, members in inv.groups.items():
        if group == "all" or not members:
            continue
        assert sorted(listed[group]["hosts"]) == sorted(members), group
        assert group in listed["all"]["children"]


@pytest.mark.skipif(not ANSIBLE_INVENTORY.exists(), reason="ansible-core not installed in this environment")
def test_ansible_export_keeps_group_vars_on_groups(tmp_path: Path) -> None:
    inv = load(DATA / "groups_forms.yml")
    listed = ansible_list(tmp_path, export_ansible(inv), "--export")
    assert listed["all"]["vars"] == {"site": "east", "level": "cluster"}
    assert listed["r01"]["vars"] == {"level": "rack", "rack_only": 1}
    assert listed["not_r01"]["vars"] == {"level": "group-not_r01"}
    # Ansible would let `not_r01` beat `later` (groups merge by name); dccli's file order says `later`,
    # so the export pins that value on the host.
    assert listed["_meta"]["hostvars"]["gpu05"]["level"] == "group-later"
    assert "level" not in listed["_meta"]["hostvars"].get("gpu06", {})


def ssh_g(config: Path, host: str) -> dict[str, str]:
    proc = subprocess.run(
        ["ssh", "-G", "-F", str(config), host], capture_output=True, text=True, timeout=30, check=True
    )
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, value)
    return out


def unbracket(jump: str | None) -> str | None:
    # ssh -G prints `user@[host]` even for IPv4 hosts; compare without the brackets.
    return re.sub(r"\[([^\]]*)\]", r"\1", jump) if jump else jump


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_ssh_config_resolved_by_ssh(tmp_path: Path, source: Path) -> None:
    inv = load(source)
    config = tmp_path / "ssh_config"
    text = export_ssh_config(inv)
    config.write_text(text, encoding="utf-8")
    for host in inv.hosts:
        if host.connection == "local":
            assert f"Host {host.name}\n" not in text
            continue
        got = ssh_g(config, host.name)
        assert got["hostname"] == host.address
        assert got["port"] == str(host.port)
        assert got["user"] == host.user
        if host.identity_file:
            assert got["identityfile"] == host.identity_file
            assert got["identitiesonly"] == "yes"
        else:
            assert got["identitiesonly"] == "no"
        assert unbracket(got.get("proxyjump")) == unbracket(host.jump)
        if inv.defaults.known_hosts:
            assert got["userknownhostsfile"].split()[0] == inv.defaults.known_hosts


def test_jump_chain_resolves_inventory_hops() -> None:
    inv = load(DATA / "local_and_jumps.yml")
    assert jump_chain(inv, inv.host("gpu01")) == "jump@192.0.2.1:22,root@10.0.0.1:22"
    assert jump_chain(inv, inv.host("bastion01")) == "jump@192.0.2.1:22"
    assert jump_chain(inv, inv.host("outer")) is None
    v6 = load(DATA / "ipv6_and_dns.yml")
    assert jump_chain(v6, v6.host("gpu1")) == "admin@[fd00::1]:2222"


def test_export_json_document() -> None:
    inv = load(SOURCES[0])
    doc = json.loads(export_json(inv))
    assert doc["schema_version"] == 1
    assert doc["inventory"] == json.loads(json.dumps(inv.to_dict()))
    assert [h["name"] for h in doc["inventory"]["hosts"]] == inv.names()


def test_localhost_exports() -> None:
    inv = localhost_inventory()
    assert "connection local" in export_ssh_config(inv)
    assert "ansible_connection: local" in export_ansible(inv)
    assert json.loads(export_json(inv))["inventory"]["hosts"][0]["connection"] == "local"
