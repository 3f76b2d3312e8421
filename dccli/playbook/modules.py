"""The modules dccli provision knows: their arguments (for load-time validation) and where they run.

"remote" modules run on the host inside the play's session (dccli/playbook/remote/); "action" modules run on
the control node (debug, set_fact, assert, fail, meta) or drive remote steps from there (template renders
on the control node then copies; reboot triggers and waits; copy reads src on the control node).
"""

from __future__ import annotations

from dataclasses import dataclass

_FILE_ATTRS = frozenset(
    {"mode", "owner", "group", "seuser", "serole", "setype", "selevel", "unsafe_writes", "attributes"}
)


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    args: frozenset[str]
    free_form: bool = False  # `command: touch x` (the text is _raw_params)
    kv_form: bool = True  # `file: path=/x state=directory`
    required_one_of: tuple[str, ...] = ()


def _spec(
    name: str,
    args: str,
    *,
    free_form: bool = False,
    kv_form: bool = True,
    files: bool = False,
    required: tuple[str, ...] = (),
) -> ModuleSpec:
    names = frozenset(args.split()) | (_FILE_ATTRS if files else frozenset())
    return ModuleSpec(name, names, free_form, kv_form, required)


SPECS: dict[str, ModuleSpec] = {
    s.name: s
    for s in (
        _spec(
            "command",
            "_raw_params cmd argv creates removes chdir stdin stdin_add_newline strip_empty_ends "
            "expand_argument_vars",
            free_form=True,
        ),
        _spec(
            "shell",
            "_raw_params cmd creates removes chdir stdin stdin_add_newline executable",
            free_form=True,
        ),
        _spec(
            "copy",
            "dest src content backup force remote_src validate directory_mode follow decrypt checksum "
            "local_follow",
            files=True,
            required=("dest",),
        ),
        _spec(
            "template",
            "src dest backup force validate newline_sequence trim_blocks lstrip_blocks "
            "output_encoding follow",
            files=True,
            required=("src", "dest"),
        ),
        _spec(
            "file",
            "path dest name state src recurse force follow access_time modification_time "
            "access_time_format modification_time_format",
            files=True,
        ),
        _spec(
            "lineinfile",
            "path dest name regexp regex search_string line value state insertafter insertbefore "
            "create backup backrefs firstmatch validate",
            files=True,
        ),
        _spec(
            "blockinfile",
            "path dest name block content marker marker_begin marker_end state insertafter "
            "insertbefore create backup validate append_newline prepend_newline",
            files=True,
        ),
        _spec(
            "stat", "path follow get_checksum checksum_algorithm get_mime get_attributes", required=("path",)
        ),
        _spec(
            "apt",
            "name pkg package state update_cache cache_valid_time install_recommends force "
            "allow_downgrade allow_change_held_packages autoremove purge deb dpkg_options default_release "
            "upgrade only_upgrade lock_timeout",
        ),
        _spec("dpkg_selections", "name selection", required=("name", "selection")),
        _spec(
            "apt_repository",
            "repo state filename update_cache mode codename validate_certs install_python_apt",
            required=("repo",),
        ),
        _spec(
            "deb822_repository",
            "name uris suites components types signed_by trusted state enabled "
            "architectures allow_insecure mode",
            required=("name",),
        ),
        _spec(
            "pip",
            "name requirements virtualenv virtualenv_command virtualenv_python virtualenv_site_packages "
            "state extra_args editable chdir executable version umask",
        ),
        _spec(
            "service",
            "name state enabled sleep pattern arguments runlevel use daemon_reload",
            required=("name",),
        ),
        _spec("sysctl", "name value state sysctl_file sysctl_set reload ignoreerrors", required=("name",)),
        _spec(
            "get_url",
            "url dest checksum force mode owner group timeout headers url_username url_password "
            "validate_certs backup tmp_dest",
            files=True,
            required=("url", "dest"),
        ),
        _spec(
            "unarchive",
            "src dest remote_src creates extra_opts list_files keep_newer include exclude copy",
            files=True,
            required=("src", "dest"),
        ),
        _spec(
            "reboot",
            "reboot_timeout connect_timeout pre_reboot_delay post_reboot_delay test_command msg "
            "reboot_command search_paths boot_time_command",
        ),
        _spec("wait_for", "path port host state timeout delay sleep search_regex connect_timeout msg"),
        _spec("ping", "data"),
        _spec("assert", "that fail_msg msg success_msg quiet"),
        _spec("debug", "msg var verbosity"),
        _spec("set_fact", "cacheable", kv_form=True),  # any other key is a fact to set
        _spec("fail", "msg"),
        _spec("meta", "_raw_params", free_form=True),
        _spec("pause", "seconds minutes prompt echo"),
    )
}

# systemd's own arguments map onto service's (there is no systemd in the lab: see docs/provision.md).
SPECS["systemd"] = ModuleSpec(
    "service", SPECS["service"].args | {"daemon_reexec", "scope", "masked", "no_block", "force"}
)
SPECS["systemd_service"] = SPECS["systemd"]

ALIASES = {f"ansible.builtin.{n}": n for n in SPECS} | {
    "ansible.posix.sysctl": "sysctl",
    "ansible.builtin.sysctl": "sysctl",
    "community.general.sysctl": "sysctl",
}

ACTION_ONLY = {"assert", "debug", "set_fact", "fail", "meta", "pause"}
META_ACTIONS = {
    "flush_handlers",
    "noop",
    "end_play",
    "end_host",
    "clear_host_errors",
    "refresh_inventory",
    "reset_connection",
    "end_batch",
}

TASK_KEYWORDS = frozenset(
    {
        "name",
        "when",
        "register",
        "changed_when",
        "failed_when",
        "ignore_errors",
        "loop",
        "with_items",
        "with_list",
        "loop_control",
        "notify",
        "tags",
        "check_mode",
        "diff",
        "vars",
        "environment",
        "become",
        "become_user",
        "become_method",
        "args",
        "until",
        "retries",
        "delay",
        "no_log",
        "listen",
        "collections",
        "ignore_unreachable",
        "debugger",
        "throttle",
        "timeout",
        "any_errors_fatal",
    }
)
BLOCK_KEYWORDS = frozenset(
    {
        "block",
        "rescue",
        "always",
        "name",
        "when",
        "tags",
        "vars",
        "environment",
        "become",
        "become_user",
        "become_method",
        "ignore_errors",
        "check_mode",
        "diff",
        "no_log",
        "any_errors_fatal",
        "collections",
    }
)
PLAY_KEYWORDS = frozenset(
    {
        "hosts",
        "name",
        "tasks",
        "pre_tasks",
        "post_tasks",
        "handlers",
        "vars",
        "vars_files",
        "gather_facts",
        "serial",
        "max_fail_percentage",
        "any_errors_fatal",
        "become",
        "become_user",
        "become_method",
        "environment",
        "tags",
        "check_mode",
        "diff",
        "collections",
        "order",
        "strategy",
        "remote_user",
        "connection",
        "no_log",
        "ignore_errors",
        "force_handlers",
        "gather_subset",
        "gather_timeout",
        "timeout",
    }
)
UNSUPPORTED = {
    "roles": "roles are not supported by dccli provision; use import_tasks (docs/provision.md)",
    "include_role": "include_role is not supported by dccli provision (docs/provision.md)",
    "import_role": "import_role is not supported by dccli provision (docs/provision.md)",
    "import_playbook": "import_playbook is not supported; pass several playbooks to dccli provision",
    "delegate_to": "delegate_to is not supported by dccli provision (docs/provision.md)",
    "local_action": "local_action is not supported by dccli provision (docs/provision.md)",
    "run_once": "run_once is not supported by dccli provision (docs/provision.md)",
    "async": "async/poll is not supported by dccli provision (docs/provision.md)",
    "poll": "async/poll is not supported by dccli provision (docs/provision.md)",
    "vars_prompt": "vars_prompt is not supported: pass -e KEY=VALUE",
}


def canonical(name: str) -> str | None:
    short = ALIASES.get(name, name)
    return short if short in SPECS else None


def suggest(name: str, choices) -> str:
    import difflib

    near = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {near[0]!r}?)" if near else ""
