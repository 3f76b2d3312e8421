"""The engine end to end on `localhost` (connection: local, a real python3 session, files under tmp_path):
counts exactly as Ansible's PLAY RECAP counts them, for handlers, blocks, loops, register/when, tags."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dccli.inventory.loader import localhost_inventory
from dccli.playbook import loader, names
from dccli.playbook.events import TaskDone
from dccli.playbook.play import plan_hosts, run_playbooks
from dccli.playbook.runner import Options
from dccli.transport.pool import ConnectionPool


def play(tmp_path: Path, body: str, **opts) -> tuple[dict, list[TaskDone], dict]:
    pb = tmp_path / "pb.yml"
    pb.write_text(textwrap.dedent(body).replace("TMP", str(tmp_path)))
    books = [loader.load(pb)]
    inv = localhost_inventory()
    options = Options(**opts)
    names.check(books, inv, dict(options.extra_vars))
    events: list = []
    with ConnectionPool(inv) as pool:
        result = run_playbooks(
            plan_hosts(books, inv, list(inv.hosts), options), inv, pool, options, forks=4, emit=events.append
        )
    tasks = [e for e in events if isinstance(e, TaskDone)]
    return result.stats["localhost"].to_dict(), tasks, result.fates


def test_handlers_notify_listen_flush_and_run_once_each(tmp_path):
    stats, tasks, _ = play(
        tmp_path,
        """
        - hosts: all
          gather_facts: false
          handlers:
            - {name: h1, command: "touch TMP/h1"}
            - {name: h2, listen: topic, debug: {msg: listened}}
          tasks:
            - {copy: {dest: TMP/a, content: a}, notify: [h1, topic]}
            - {copy: {dest: TMP/b, content: b}, notify: h1}
            - meta: flush_handlers
            - {copy: {dest: TMP/a, content: a}, notify: h1}
            - {command: "test -e TMP/h1", changed_when: false}
    """,
    )
    handlers = [t.task for t in tasks if t.handler]
    assert handlers == ["h1", "h2"]  # once each, at the flush; the unchanged copy notifies nothing
    assert stats == {
        "ok": 6,
        "changed": 3,
        "unreachable": 0,
        "failed": 0,
        "skipped": 0,
        "rescued": 0,
        "ignored": 0,
    }


def test_block_rescue_always_and_ignore_errors_counts(tmp_path):
    stats, tasks, fates = play(
        tmp_path,
        """
        - hosts: all
          gather_facts: false
          tasks:
            - block:
                - command: /bin/false
                - debug: msg=never
              rescue:
                - debug: msg="{{ ansible_failed_result.rc }} from {{ ansible_failed_task.name }}"
              always:
                - {file: {path: TMP/always, state: touch}}
            - {command: /bin/false, ignore_errors: true}
            - {fail: {msg: stop here}}
            - debug: msg="not reached"
    """,
    )
    # As Ansible: the rescued failure counts only as rescued; the ignored one as ok + ignored, and changed
    # (a command that ran is changed); the failing `fail` stops the host.
    assert stats == {
        "ok": 3,
        "changed": 2,
        "unreachable": 0,
        "failed": 1,
        "skipped": 0,
        "rescued": 1,
        "ignored": 1,
    }
    assert fates == {"localhost": "failed"}
    assert [t.msg for t in tasks if t.task == "debug"] == ["1 from command"]
    assert (tmp_path / "always").exists()


def test_loops_register_when_until_and_set_fact(tmp_path):
    stats, tasks, _ = play(
        tmp_path,
        """
        - hosts: all
          gather_facts: true
          vars: {dirs: [x, y, skip]}
          tasks:
            - file: {path: "TMP/{{ item }}", state: directory}
              loop: "{{ dirs }}"
              when: item != 'skip'
              register: made
            - set_fact: {n: "{{ made.results | selectattr('changed') | list | length }}"}
            - assert: {that: ["n | int == 2", "made.results[2].skipped", "ansible_distribution is defined"]}
            - command: "echo {{ inventory_hostname }}"
              register: out
              changed_when: out.rc != 0
            - debug: msg=skipped
              when: out.stdout != 'localhost'
            - {file: {path: TMP/none, state: directory}, loop: []}
            - shell: "echo x >> TMP/count; wc -l < TMP/count"
              register: c
              until: c.stdout | int >= 3
              retries: 5
              delay: 0
              changed_when: false
    """,
    )
    assert stats == {
        "ok": 6,
        "changed": 1,
        "unreachable": 0,
        "failed": 0,
        "skipped": 2,
        "rescued": 0,
        "ignored": 0,
    }
    items = [t.item for t in tasks if t.task == "file" and t.item is not None]
    assert items == ["x", "y", "skip"]
    assert (tmp_path / "count").read_text().count("x") == 3


def test_tags_and_check_mode(tmp_path):
    body = """
        - hosts: all
          gather_facts: false
          tasks:
            - {copy: {dest: TMP/t1, content: "1"}, tags: [one]}
            - {copy: {dest: TMP/t2, content: "2"}, tags: [two]}
            - {copy: {dest: TMP/t3, content: "3"}, tags: [always]}
            - {copy: {dest: TMP/t4, content: "4"}, tags: [never, debug]}
    """
    stats, _, _ = play(tmp_path, body, check=True)
    assert stats["changed"] == 3 and not list(tmp_path.glob("t*"))  # --check wrote nothing
    stats, _, _ = play(tmp_path, body, tags=frozenset({"one"}))
    assert sorted(p.name for p in tmp_path.glob("t*")) == ["t1", "t3"]
    stats, _, _ = play(tmp_path, body, skip_tags=frozenset({"one"}), tags=frozenset({"debug"}))
    assert sorted(p.name for p in tmp_path.glob("t*")) == ["t1", "t3", "t4"]


def test_no_log_hides_results_from_every_event(tmp_path):
    _, tasks, _ = play(
        tmp_path,
        """
        - hosts: all
          gather_facts: false
          vars: {secret: hunter2}
          tasks:
            - {command: "echo {{ secret }}", no_log: true, changed_when: false}
            - {debug: {msg: "{{ secret }}"}, no_log: true}
    """,
    )
    assert all("hunter2" not in repr(t) for t in tasks)
    assert all("no_log" in t.msg for t in tasks)


def test_large_files_go_over_sftp_once(tmp_path, monkeypatch):
    from dccli.playbook import actions

    monkeypatch.setattr(actions, "INLINE_LIMIT", 1000)  # so a 30 kB file takes the upload path
    big = tmp_path / "files" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(bytes(range(256)) * 120)
    body = """
        - hosts: all
          gather_facts: false
          tasks:
            - {copy: {src: big.bin, dest: TMP/out/, mode: "0640"}}
    """
    (tmp_path / "out").mkdir()
    pb = tmp_path / "pb.yml"
    stats, _, _ = play(tmp_path, body)
    assert stats["changed"] == 1 and (tmp_path / "out" / "big.bin").read_bytes() == big.read_bytes()
    assert oct((tmp_path / "out" / "big.bin").stat().st_mode & 0o777) == "0o640"
    assert not list((tmp_path / "out").glob("*.dccli-upload-*"))
    stats, _, _ = play(tmp_path, body)
    assert stats["changed"] == 0 and pb.exists()
