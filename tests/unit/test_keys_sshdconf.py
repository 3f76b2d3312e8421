"""sshd_config edits on Debian 12's real file: dccli's block before any Match, never an override."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dccli.keys import sshdconf

DEBIAN = (Path(__file__).parent / "data" / "keys" / "sshd_config.debian12").read_text()
WANT = {"TrustedUserCAKeys": "/etc/ssh/dccli_user_ca.pub", "RevokedKeys": "/etc/ssh/dccli_revoked_keys"}


def test_block_is_added_once_and_the_rest_is_kept():
    new = sshdconf.ensure(DEBIAN, WANT)
    assert new.startswith(DEBIAN) and new.count(sshdconf.BEGIN) == 1
    assert sshdconf.ensure(new, WANT) == new
    assert sshdconf.global_values(new)["trustedusercakeys"] == WANT["TrustedUserCAKeys"]


def test_block_goes_before_the_first_match():
    text = DEBIAN + "Match User backup\n    ForceCommand /usr/bin/backup\n"
    new = sshdconf.ensure(text, WANT)
    assert new.index(sshdconf.BEGIN) < new.index("Match User backup")
    assert (
        new.replace(new[new.index(sshdconf.BEGIN) : new.index(sshdconf.END) + len(sshdconf.END) + 1], "")
        == text
    )


def test_an_existing_different_value_is_never_overridden():
    with pytest.raises(sshdconf.ConflictError, match=r"TrustedUserCAKeys /etc/ssh/corp_ca\.pub"):
        sshdconf.ensure("TrustedUserCAKeys /etc/ssh/corp_ca.pub\n" + DEBIAN, WANT)
    # the same keyword inside a Match block is not global: no conflict
    sshdconf.ensure(DEBIAN + "Match User x\n  TrustedUserCAKeys /other\n", WANT)


def test_changing_our_own_values_rewrites_the_block():
    first = sshdconf.ensure(DEBIAN, WANT)
    second = sshdconf.ensure(first, {**WANT, "RevokedKeys": "/etc/ssh/other"})
    assert second.count(sshdconf.BEGIN) == 1 and "RevokedKeys /etc/ssh/other" in second


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists(), reason="sshd -T needs root")
def test_sshd_accepts_the_result(tmp_path):
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    (tmp_path / "ca.pub").write_text("")
    conf = tmp_path / "sshd_config"
    conf.write_text(sshdconf.ensure(DEBIAN, {"TrustedUserCAKeys": str(tmp_path / "ca.pub")}))
    proc = subprocess.run([sshd, "-T", "-f", str(conf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"trustedusercakeys {tmp_path / 'ca.pub'}" in proc.stdout
