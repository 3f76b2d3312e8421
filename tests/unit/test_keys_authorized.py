"""authorized_keys edits: every line that is not ours comes back byte for byte (ssh-keygen as the oracle)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from dccli.keys import authorized

DATA = Path(__file__).parent / "data" / "keys"
SSHD8 = (DATA / "authorized_keys.sshd8").read_bytes()


def blob_of(pub: Path) -> bytes:
    return base64.b64decode(pub.read_text().split()[1])


OLD, NEW = blob_of(DATA / "dccli_old.pub"), blob_of(DATA / "dccli_new.pub")
NEW_LINE = (DATA / "dccli_new.pub").read_bytes().strip()


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_entries_match_ssh_keygen_on_the_sshd8_example(tmp_path):
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(DATA / "authorized_keys.sshd8")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = [line.split()[1] for line in out.splitlines()]
    assert [e.fingerprint for e in authorized.entries(SSHD8)] == expected
    assert [e.cert_authority for e in authorized.entries(SSHD8)] == [False] * 6 + [True]


def test_options_with_quotes_spaces_and_escaped_quotes():
    line = b'command="echo \\"a b\\", c",no-pty ' + NEW_LINE
    entry = authorized.parse_line(line)
    assert entry is not None and entry.blob == NEW
    assert authorized.split_options(entry.options) == ['command="echo \\"a b\\", c"', "no-pty"]
    assert authorized.parse_line(b'command="never closed ' + NEW_LINE) is None
    assert authorized.parse_line(b"# " + NEW_LINE) is None
    assert authorized.parse_line(b"ssh-ed25519 not-base64!") is None


def test_split_lines_round_trips_every_byte():
    for text in (SSHD8, b"", b"a", b"a\r\nb\n\nc", b"\n\n", b"x\ry\n"):
        assert b"".join(authorized.split_lines(text)) == text


@pytest.mark.parametrize("tail", [b"", b"\n", b"\r\n", b"# no newline at the end"])
def test_add_prepends_and_remove_drops_only_our_lines(tail):
    before = SSHD8.replace(b"\n", b"\r\n", 3) + tail
    added = authorized.add_key(before, NEW_LINE)
    assert added == NEW_LINE + b"\n" + before
    assert authorized.add_key(added, NEW_LINE) == added  # idempotent: a re-run adds nothing
    kept, removed = authorized.remove_keys(added, [OLD])
    # the permitopen line authorizes the old key (removed); the cert-authority line with the same key stays
    assert removed == 1
    expected = b"".join(line for line in authorized.split_lines(added) if not line.startswith(b"permitopen="))
    assert kept == expected
    assert authorized.has_key(kept, NEW) and not authorized.has_key(kept, OLD)
    assert [e.blob for e in authorized.cert_authorities(kept)] == [OLD]


def test_add_refuses_something_that_is_not_a_key():
    with pytest.raises(ValueError):
        authorized.add_key(SSHD8, b"not a key")
