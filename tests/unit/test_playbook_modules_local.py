"""The host-side modules, run for real in one interactive session through a local python3 (no SSH needed).

For each module: the first call changes, the second reports no change, and check mode changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from dccli.playbook.channel import Session
from dccli.transport.local import LocalConnection


@pytest.fixture(scope="module")
def session():
    s = Session(LocalConnection())
    yield s
    s.close()


def tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        what = (
            os.readlink(p)
            if p.is_symlink()
            else hashlib.sha1(p.read_bytes()).hexdigest()
            if p.is_file()
            else "d"
        )
        out[str(p.relative_to(root))] = f"{st.st_mode:o} {what}"
    return out


def converge(session, tmp_path: Path, kind: str, args: dict) -> dict:
    """check mode first (must change nothing but predict a change), then apply, then apply again (no change)."""
    before = tree(tmp_path)
    predicted = session.call(kind, args, check=True, diff=True)
    assert not predicted.get("failed"), predicted
    assert tree(tmp_path) == before, f"{kind}: check mode changed files"
    first = session.call(kind, args, diff=True)
    assert not first.get("failed"), first
    assert first["changed"] and predicted["changed"], (predicted, first)
    second = session.call(kind, args)
    assert not second.get("failed") and not second["changed"], second
    again = session.call(kind, args, check=True)
    assert not again["changed"], again
    return first


def data(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_file_directory_link_hard_absent(session, tmp_path):
    d = tmp_path / "a" / "b"
    converge(session, tmp_path, "file", {"path": str(d), "state": "directory", "mode": "0750"})
    assert (
        oct(d.stat().st_mode & 0o777) == "0o750" and oct((tmp_path / "a").stat().st_mode & 0o777) == "0o750"
    )
    (tmp_path / "f").write_text("x")
    converge(session, tmp_path, "file", {"path": str(tmp_path / "f"), "mode": "0600"})
    converge(
        session, tmp_path, "file", {"src": str(tmp_path / "f"), "dest": str(tmp_path / "l"), "state": "link"}
    )
    assert os.readlink(tmp_path / "l") == str(tmp_path / "f")
    converge(
        session, tmp_path, "file", {"src": str(tmp_path / "f"), "path": str(tmp_path / "h"), "state": "hard"}
    )
    converge(session, tmp_path, "file", {"path": str(tmp_path / "a"), "state": "absent"})
    assert not (tmp_path / "a").exists()
    missing = session.call("file", {"path": str(tmp_path / "nope")})
    assert missing["failed"] and "is absent, cannot continue" in missing["msg"]


def test_file_touch_always_changes_like_ansible(session, tmp_path):
    p = tmp_path / "t"
    assert session.call("file", {"path": str(p), "state": "touch"})["changed"]
    assert session.call("file", {"path": str(p), "state": "touch"})["changed"]


def test_copy_content_mode_backup_and_dir_dest(session, tmp_path):
    dest = tmp_path / "c.conf"
    first = converge(session, tmp_path, "copy", {"dest": str(dest), "_data": data("a=1\n"), "mode": "0640"})
    assert dest.read_text() == "a=1\n" and oct(dest.stat().st_mode & 0o777) == "0o640"
    assert first["checksum"] == hashlib.sha1(b"a=1\n").hexdigest()
    res = session.call("copy", {"dest": str(dest), "_data": data("a=2\n"), "backup": True}, diff=True)
    assert res["changed"] and Path(res["backup_file"]).read_text() == "a=1\n"
    assert res["diff"][0]["before"] == "a=1\n" and res["diff"][0]["after"] == "a=2\n"
    assert oct(dest.stat().st_mode & 0o777) == "0o640"  # replacing content keeps the file's mode
    converge(
        session, tmp_path, "copy", {"dest": str(tmp_path) + "/", "_data": data("s"), "_src_name": "pushed"}
    )
    assert (tmp_path / "pushed").read_text() == "s"
    assert session.call("copy", {"dest": str(tmp_path / "nodir" / "x"), "_data": data("x")})["failed"]


@pytest.mark.parametrize(
    "start,args,end",
    [
        ("a\n", {"line": "b"}, "a\nb\n"),
        ("a", {"line": "b"}, "a\nb\n"),
        ("k=1\nx\n", {"regexp": "^k=", "line": "k=2"}, "k=2\nx\n"),
        ("a\nc\n", {"line": "b", "insertafter": "^a"}, "a\nb\nc\n"),
        ("a\nc\n", {"line": "b", "insertbefore": "^c"}, "a\nb\nc\n"),
        ("a\nc\n", {"line": "b", "insertbefore": "BOF"}, "b\na\nc\n"),
        ("k=1\n", {"regexp": r"^k=(\d)", "line": r"k=\1\1", "backrefs": True}, "k=11\n"),
        ("a\nb\na\n", {"line": "a", "state": "absent"}, "b\n"),
        ("k=1\nk=2\n", {"regexp": "^k=", "state": "absent"}, ""),
        ("x\n", {"search_string": "x", "line": "y"}, "y\n"),
    ],
)
def test_lineinfile_follows_ansible(session, tmp_path, start, args, end):
    path = tmp_path / "f"
    path.write_text(start)
    converge(session, tmp_path, "lineinfile", {"path": str(path), **args})
    assert path.read_text() == end


def test_lineinfile_create_and_missing_file(session, tmp_path):
    res = session.call("lineinfile", {"path": str(tmp_path / "no"), "line": "x"})
    assert res["failed"] and res["rc"] == 257
    converge(
        session, tmp_path, "lineinfile", {"path": str(tmp_path / "sub" / "new"), "line": "x", "create": True}
    )
    assert (tmp_path / "sub" / "new").read_text() == "x\n"


def test_blockinfile_insert_replace_remove(session, tmp_path):
    path = tmp_path / "f"
    path.write_text("top\n")
    converge(session, tmp_path, "blockinfile", {"path": str(path), "block": "a=1\nb=2"})
    assert path.read_text() == "top\n# BEGIN ANSIBLE MANAGED BLOCK\na=1\nb=2\n# END ANSIBLE MANAGED BLOCK\n"
    converge(session, tmp_path, "blockinfile", {"path": str(path), "block": "a=3", "marker": "## {mark} x"})
    converge(session, tmp_path, "blockinfile", {"path": str(path), "block": "a=1\nb=2", "state": "absent"})
    assert path.read_text() == "top\n## BEGIN x\na=3\n## END x\n"


def test_command_and_shell(session, tmp_path):
    marker = tmp_path / "m"
    converge(session, tmp_path, "command", {"_raw_params": f"touch {marker}", "creates": str(marker)})
    res = session.call(
        "shell", {"_raw_params": "echo $X; pwd; exit 3", "chdir": str(tmp_path)}, env={"X": "from-env"}
    )
    assert res["failed"] and res["rc"] == 3 and res["stdout_lines"] == ["from-env", str(tmp_path)]
    skipped = session.call("command", {"_raw_params": "true"}, check=True)
    assert skipped["skipped"] and not skipped["changed"]  # Ansible: a command without creates/removes skips
    ran = session.call("command", {"argv": ["printf", "%s", "a b"]})
    assert ran["stdout"] == "a b" and ran["rc"] == 0 and not ran.get("failed")
    converge(session, tmp_path, "command", {"_raw_params": f"rm {marker}", "removes": str(marker)})


def test_sysctl_writes_the_file_and_reports_a_readonly_proc(session, tmp_path):
    conf = tmp_path / "99-gpu.conf"
    converge(
        session,
        tmp_path,
        "sysctl",
        {"name": "vm.swappiness", "value": "1", "sysctl_file": str(conf), "reload": False},
    )
    assert conf.read_text() == "vm.swappiness=1\n"
    converge(
        session,
        tmp_path,
        "sysctl",
        {"name": "vm.swappiness", "value": "10", "sysctl_file": str(conf), "reload": False},
    )
    assert conf.read_text() == "vm.swappiness=10\n"


def test_get_url_with_checksum_and_unarchive(session, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    want = "sha256:" + hashlib.sha256(b"payload").hexdigest()
    dest = tmp_path / "out" / "got.bin"
    dest.parent.mkdir()
    converge(
        session,
        tmp_path,
        "get_url",
        {"url": src.as_uri(), "dest": str(dest), "checksum": want, "mode": "0600"},
    )
    assert dest.read_bytes() == b"payload"
    bad = session.call(
        "get_url", {"url": src.as_uri(), "dest": str(tmp_path / "bad"), "checksum": "sha256:00"}
    )
    assert bad["failed"] and "did not match" in bad["msg"] and not (tmp_path / "bad").exists()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("pkg/bin/tool")
        info.size, info.mode = 3, 0o755
        tf.addfile(info, io.BytesIO(b"hi\n"))
    (tmp_path / "x").mkdir()
    converge(
        session,
        tmp_path,
        "unarchive",
        {"dest": str(tmp_path / "x"), "_data": base64.b64encode(buf.getvalue()).decode()},
    )
    assert (tmp_path / "x" / "pkg" / "bin" / "tool").read_text() == "hi\n"


def test_wait_for_and_stat(session, tmp_path):
    p = tmp_path / "ready"
    p.write_text("state=ok\n")
    assert not session.call("wait_for", {"path": str(p), "search_regex": "ok", "timeout": 2}).get("failed")
    res = session.call("wait_for", {"path": str(tmp_path / "never"), "timeout": 1, "sleep": 0.2})
    assert res["failed"] and "Timeout" in res["msg"]
    st = session.call("stat", {"path": str(p)})["stat"]
    assert st["exists"] and st["isreg"] and st["checksum"] == hashlib.sha1(b"state=ok\n").hexdigest()
    assert session.call("stat", {"path": str(tmp_path / "none")})["stat"] == {"exists": False}


def test_unknown_module_and_module_errors_keep_the_session_alive(session, tmp_path):
    assert session.call("nope", {})["failed"]
    assert session.call("file", {})["failed"]
    assert session.call("ping", {})["ping"] == "pong"


@pytest.fixture(scope="module")
def remote_ns() -> dict:
    """The host-side program's namespace (without starting pb_main), for its pure helpers."""
    import zlib

    from dccli.playbook.channel import program

    source = zlib.decompress(program()[1]).decode()
    ns: dict = {}
    exec(compile(source.replace("\npb_main()\n", "\n"), "dccli-playbook", "exec"), ns)
    return ns


@pytest.mark.parametrize(
    "spec,installed,ok",
    [
        (
            "torch==2.5.1",
            {"torch": "2.5.1+dccli.sim"},
            True,
        ),  # PEP 440: no local label in the pin matches any
        ("torch==2.5.1+cu121", {"torch": "2.5.1+dccli.sim"}, False),
        ("torch==2.5.*", {"torch": "2.5.1"}, True),
        ("numpy>=1.26,<2", {"numpy": "1.26.4"}, True),
        ("numpy>=2", {"numpy": "1.26.4"}, False),
        ("Typing_Extensions", {"typing-extensions": "4.12.0"}, True),
        ("absent-pkg", {}, False),
    ],
)
def test_pip_pins(remote_ns, spec, installed, ok):
    assert remote_ns["spec_satisfied"](spec, installed) is ok


def test_the_host_program_is_stdlib_only(remote_ns):
    import sys
    import zlib

    from dccli.playbook.channel import program

    source = zlib.decompress(program()[1]).decode()
    imports = {
        line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))
    }
    assert imports <= set(sys.stdlib_module_names), imports - set(sys.stdlib_module_names)


def test_a_host_without_python3_is_a_clear_failure(monkeypatch):
    from dccli.remote.session import HelperError

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HelperError, match="needs python3"):
        Session(LocalConnection())
