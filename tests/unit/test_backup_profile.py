"""The inventory's `backup:` section: parsed into frozen values; every mistake is one file:line:col line."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dccli.backup.profile import SFTP, config_of
from dccli.errors import InventoryError, UsageError
from dccli.inventory.loader import loads

BASE = """\
cluster: c1
hosts:
  gpu[01-04]: {address: "10.0.0.[1-4]"}
  stor01: {address: 10.0.1.1}
groups:
  gpu: "gpu[01-04]"
"""

GOOD = (
    BASE
    + """\
backup:
  concurrency: 3
  repositories:
    ckpt: {url: "sftp:stor01:/srv/restic/ckpt"}
    etc: {url: /var/backups/restic}
    remote: {url: "rest:https://backup.example.org:8000/c1"}
  profiles:
    checkpoints:
      hosts: "@gpu!gpu04"
      repository: ckpt
      paths: [/data/ckpt, /etc]
      excludes: ["*.tmp", "/data/ckpt/scratch"]
      checkpoints: {dirs: [/data/ckpt], marker: COMPLETE}
      retention: {keep_last: 3, keep_daily: 7}
    system:
      repository: etc
      paths: [/etc]
"""
)


def error_of(text: str) -> str:
    with pytest.raises(InventoryError) as info:
        loads(text, "inv.yml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_section_becomes_frozen_values() -> None:
    inv = loads(GOOD, "inv.yml")
    config = config_of(inv)
    assert config.concurrency == 3
    ckpt = config.repositories["ckpt"]
    assert (ckpt.kind, ckpt.host, ckpt.path) == (SFTP, "stor01", "/srv/restic/ckpt")
    assert config.repositories["etc"].kind == "local"
    assert config.repositories["remote"].kind == "rest"
    p = config.profile("checkpoints")
    assert p.hosts == ("gpu01", "gpu02", "gpu03")
    assert p.paths == ("/data/ckpt", "/etc")
    assert p.checkpoints is not None and p.checkpoints.marker == "COMPLETE"
    assert p.retention.keep_last == 3 and p.retention.keep_weekly is None
    assert p.source == "inv.yml:14"
    assert config.profile("system").hosts == tuple(inv.names())  # default: every host
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.paths = ()  # type: ignore[misc]


def test_inventory_without_section_has_none_and_commands_say_so() -> None:
    inv = loads(BASE, "inv.yml")
    assert inv.backup is None
    with pytest.raises(UsageError, match="no 'backup:' section"):
        config_of(inv)


def test_unknown_profile_gets_a_suggestion() -> None:
    config = config_of(loads(GOOD, "inv.yml"))
    with pytest.raises(UsageError, match="did you mean 'checkpoints'"):
        config.profile("checkpoint")


def test_rest_url_credentials_are_redacted() -> None:
    text = GOOD.replace("https://backup.example.org", "https://u:secret@backup.example.org")
    repo = config_of(loads(text, "inv.yml")).repositories["remote"]
    assert "secret" not in repo.redacted and "secret" not in str(repo.to_dict())
    assert repo.redacted == "rest:https://u:***@backup.example.org:8000/c1"


def test_rest_url_parts_decode_credentials_and_keep_the_last_at() -> None:
    from dccli.backup.profile import redact_url, rest_url_parts
    from dccli.backup.repo import access_for

    url = "rest:http://dccli:p%2Fw@rd@127.0.0.3:8000/dccli/main"
    parts = rest_url_parts(url)
    assert (parts.base, parts.user, parts.password) == (
        "http://127.0.0.3:8000/dccli/main/",
        "dccli",
        "p/w@rd",
    )
    assert redact_url(url) == "rest:http://dccli:***@127.0.0.3:8000/dccli/main"
    assert rest_url_parts("rest:http://[::1]:8000").base == "http://[::1]:8000/"
    text = GOOD.replace("https://backup.example.org", "http://dccli:p%2Fw@rd@backup.example.org")
    repo = config_of(loads(text, "inv.yml")).repositories["remote"]
    # Hosts scrub both spellings of the password from restic's output.
    assert set(access_for(repo, "gpu01", None).scrub) == {"p%2Fw@rd", "p/w@rd"}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "rest:ftp://h:8000/r",
            "is not a rest-server URL (write rest:http://HOST:PORT/PATH or rest:https://...)",
        ),
        ("rest:http:///r", "has no server host name (write rest:http://HOST:PORT/PATH)"),
        ("rest:http://h:99999/r", "has a port that is not an integer from 1 to 65535"),
        ("rest:http://h:x/r", "has a port that is not an integer from 1 to 65535"),
        ("rest:http://bad_host:8000/r", "has a server host name that is neither a valid IP address nor"),
        ("rest:http://[zz]:8000/r", "has a bracketed server address that is not an IPv6 address"),
        ("rest:http://h:8000/r?x=1", "must not hold a query (?) or fragment (#)"),
        ("rest:http://dccli@h:8000/r", "has a user name but no password (write USER:PASSWORD@)"),
        ("rest:http://:s3cret@h:8000/r", "has credentials without a user name"),
        ("rest:http://dccli:s3c ret@h:8000/r", "must not contain spaces or control characters"),
        (
            "rest:http://dccli:s3c/ret@h:8000/r",
            "has an @ after the host; a / in the password must be percent-encoded",
        ),
        ('rest:http://dccli:s3c"ret@h:8000/r', "has a user or password with characters a URL cannot hold"),
        ("rest:http://dccli:s3c#ret@h:8000/r", "must not hold a query (?) or fragment (#)"),
    ],
)
def test_bad_rest_urls_are_one_line_without_the_password(url: str, problem: str) -> None:
    text = GOOD.replace('"rest:https://backup.example.org:8000/c1"', json.dumps(url))
    message = error_of(text)
    assert message.startswith("inv.yml:12:19: backup.repositories.remote.url: "), message
    assert problem in message, message
    assert "s3c" not in message and "ret@" not in message, message  # the password never shows


def test_good_rest_urls() -> None:
    for url in (
        "rest:http://127.0.0.1:8000/",
        "rest:https://backup.example.org/c1",
        "rest:http://dccli:S3cr%3Ft%23x%2F@[::1]:8000/dccli/main/",
        "rest:https://u-1.x:a!$&'()*+,;=:b@h.example.org:443/a/b",
    ):
        repo = config_of(
            loads(GOOD.replace('"rest:https://backup.example.org:8000/c1"', json.dumps(url)), "i")
        )
        assert repo.repositories["remote"].url == url


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  concurrency: 3",
            "  concurency: 3",
            "inv.yml:8:3: backup.concurency: unknown key 'concurency' (did you mean 'concurrency'?)",
        ),
        (
            "paths: [/data/ckpt, /etc]",
            "paths: [data/ckpt]",
            'inv.yml:17:15: backup.profiles.checkpoints.paths[0]: "data/ckpt" must be an absolute path',
        ),
        (
            'url: "sftp:stor01:/srv/restic/ckpt"',
            'url: "sftp:stor02:/srv/restic/ckpt"',
            "inv.yml:10:17: backup.repositories.ckpt.url: storage host 'stor02' is not an inventory host "
            "(did you mean 'stor01'?)",
        ),
        (
            'url: "sftp:stor01:/srv/restic/ckpt"',
            'url: "ftp://x"',
            'inv.yml:10:17: backup.repositories.ckpt.url: "ftp://x" is not a repository (an absolute path on the '
            "control node, sftp:HOST:/path or rest:http(s)://...)",
        ),
        (
            "repository: ckpt",
            "repository: ckp",
            "inv.yml:16:19: backup.profiles.checkpoints.repository: unknown repository 'ckp' (did you mean 'ckpt'?)",
        ),
        (
            'hosts: "@gpu!gpu04"',
            'hosts: "@gpus"',
            "inv.yml:15:14: backup.profiles.checkpoints.hosts: '@gpus': unknown group '@gpus' (did you mean 'gpu'?)",
        ),
        (
            "marker: COMPLETE}",
            "marker: COMPLETE, pattern: '*.done'}",
            "inv.yml:19:20: backup.profiles.checkpoints.checkpoints: give exactly one of 'marker' or 'pattern'",
        ),
        (
            "marker: COMPLETE}",
            "marker: a/COMPLETE}",
            'inv.yml:19:49: backup.profiles.checkpoints.checkpoints.marker: "a/COMPLETE" must be a plain file name '
            "(no '/')",
        ),
        (
            "keep_last: 3",
            "keep_last: 0",
            "inv.yml:20:30: backup.profiles.checkpoints.retention.keep_last: expected an integer from 1 to 100000, "
            "got 0",
        ),
        (
            "keep_last: 3",
            "keep_lats: 3",
            "inv.yml:20:19: backup.profiles.checkpoints.retention.keep_lats: unknown key 'keep_lats' "
            "(did you mean 'keep_last'?)",
        ),
        (
            "    system:\n      repository: etc\n",
            "    system:\n",
            "inv.yml:22:7: backup.profiles.system: missing required key 'repository'",
        ),
    ],
)
def test_bad_sections_name_file_line_column_and_key(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert error_of(GOOD.replace(old, new, 1)) == expected


def test_section_must_be_a_mapping_and_keys_required() -> None:
    assert error_of(BASE + "backup: [1]\n").startswith("inv.yml:7:9: backup: expected a mapping")
    assert "missing required key 'repositories'" in error_of(BASE + "backup: {profiles: {}}\n")


def test_cli_reports_a_bad_rest_url_in_one_line_without_the_password(tmp_path) -> None:
    import os
    import subprocess
    import sys

    inv = tmp_path / "inv.yml"
    inv.write_text(
        GOOD.replace(
            '"rest:https://backup.example.org:8000/c1"', '"rest:http://dccli:s3c/ret@h.example.org:8000/c1"'
        )
    )
    for argv in (["inventory", "validate"], ["backup", "run"]):
        proc = subprocess.run(
            [sys.executable, "-m", "dccli", *argv, "-i", str(inv)],
            capture_output=True,
            text=True,
            env=dict(os.environ, DCCLI_HOME=str(tmp_path / "home")),
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr == (
            f'dccli: error: {inv}:12:19: backup.repositories.remote.url: "rest:http://***@h.example.org:8000/c1" '
            "has an @ after the host; a / in the password must be percent-encoded (%2F)\n"
        )
    assert not (tmp_path / "home").exists()  # nothing written: no half-made state
