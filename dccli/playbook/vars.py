"""Variables of one task on one host, in Ansible's precedence order (lowest first):

inventory vars (cluster < rack < groups < host, merged by the inventory loader) < gathered facts < play vars
< play vars_files < block vars (outer first) < task vars < set_fact and registered results < extra vars (-e).
Magic vars (inventory_hostname, groups, hostvars, ansible_check_mode...) are set by dccli and sit below -e.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dccli.inventory.model import thaw

MAGIC = frozenset(
    {
        "inventory_hostname",
        "inventory_hostname_short",
        "groups",
        "group_names",
        "hostvars",
        "play_hosts",
        "ansible_play_hosts",
        "ansible_play_hosts_all",
        "ansible_play_batch",
        "ansible_check_mode",
        "ansible_diff_mode",
        "omit",
        "playbook_dir",
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_facts",
        "ansible_play_name",
        "ansible_run_tags",
        "ansible_skip_tags",
        "ansible_version",
        "ansible_loop_var",
        "ansible_failed_task",
        "ansible_failed_result",
        "item",
        "environment",
        "ansible_env",
    }
)


class HostVars(Mapping):
    """`hostvars[name]`: another host's inventory vars, facts and set facts, read live."""

    def __init__(self, run) -> None:
        self._run = run

    def __getitem__(self, name: str) -> dict[str, Any]:
        inv = self._run.inventory
        if name not in inv:
            raise KeyError(name)
        host = inv.host(name)
        state = self._run.state.get(name, {})
        out = dict(thaw(host.vars))
        from dccli.playbook.factsmap import as_vars

        if state.get("facts"):
            out.update(as_vars(state["facts"]))
        out.update(state.get("set", {}))
        out["inventory_hostname"] = name
        out["ansible_host"] = host.address
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._run.inventory.names())

    def __len__(self) -> int:
        return len(self._run.inventory.names())


def task_vars(run, host, chain, task) -> dict[str, Any]:
    from dccli.playbook.factsmap import as_vars

    play = run.play
    state = run.state.setdefault(host.name, {"facts": {}, "set": {}})
    v: dict[str, Any] = dict(thaw(host.vars))
    if state.get("facts"):
        v.update(as_vars(state["facts"]))
    v.update(magic(run, host))
    v.update(play.vars)
    v.update(play.vars_from_files)
    for block in chain:
        v.update(block.vars)
    if task is not None:
        v.update(task.vars)
    v.update(state["set"])
    v.update(run.options.extra_vars)
    return v


def magic(run, host) -> dict[str, Any]:
    from dccli.playbook.templating import OMIT

    inv = run.inventory
    groups = {name: list(members) for name, members in inv.groups.items()}
    groups.setdefault("ungrouped", [])
    return {
        "inventory_hostname": host.name,
        "inventory_hostname_short": host.name.split(".")[0],
        "groups": groups,
        "group_names": sorted(g for g in host.groups),
        "hostvars": HostVars(run),
        "play_hosts": list(run.batch),
        "ansible_play_batch": list(run.batch),
        "ansible_play_hosts": list(run.play_hosts),
        "ansible_play_hosts_all": list(run.play_hosts),
        "ansible_check_mode": run.options.check,
        "ansible_diff_mode": run.options.diff,
        "omit": OMIT,
        "playbook_dir": run.play.base_dir,
        "ansible_host": host.address,
        "ansible_play_name": run.play.name or "",
        "ansible_run_tags": sorted(run.options.tags) or ["all"],
        "ansible_skip_tags": sorted(run.options.skip_tags),
    }
