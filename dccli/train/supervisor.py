# dccli train supervisor: runs ON each node of a training run. Stdlib only, Python 3.6+.
# Pushed by SFTP to <run root>/supervisor.py and run with the run's interpreter. Subcommands:
#   start DIR            daemonize (own session, survives the SSH connection), start torchrun in ITS own
#                        session, relay its output to DIR/node.log and DIR/rank-<r>.log, record the end
#   rank DIR -- SCRIPT   the per-rank entry torchrun runs: output to DIR/rank-<r>.log, SCRIPT as __main__,
#                        DIR/done/<rank> marked when it returns
#   follow DIR OFFSETS   whole lines of node.log and every rank-<r>.log as `SRC<TAB>line`, from byte offsets;
#                        ends when the attempt has ended (or at EOF: --once)
#   watch DIR            one JSON heartbeat line per second until the attempt has ended
#   stop DIR             SIGTERM the process group, grace, SIGKILL, then report any process of the run left
#   procs                the processes whose environment says DCCLI_RUN_ID=<id> (found through /proc)
# Files of an attempt dir (never reused by a later attempt): spec.json, env.json (0600), node.log,
# rank-<r>.log, status.json, supervisor.log, done/<rank>.
import json
import os
import signal
import subprocess
import sys
import time

FINAL = ("exited", "failed_to_start")


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
    os.rename(tmp, path)


def write_private_json(path, data):
    """write_json for files holding secrets (env.json): 0600 from the moment the file exists."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.rename(tmp, path)


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (its parent just has not reaped it yet).
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_alive(pgid):
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def run_processes(run_id):
    """(pid, cmdline) of every process whose environment holds DCCLI_RUN_ID=run_id, this one excluded."""
    needle = ("DCCLI_RUN_ID=%s" % run_id).encode()
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as handle:
                env = handle.read().split(b"\0")
            if needle not in env:
                continue
            with open("/proc/%s/stat" % name) as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                cmd = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        found.append({"pid": int(name), "cmdline": cmd[:200]})
    return found


# ------------------------------------------------------------------------------------------- start
def cmd_start(d):
    if os.path.exists(os.path.join(d, "status.json")):
        print(json.dumps({"ok": False, "error": "attempt %s was already started" % d}))
        return 1
    if not os.path.isdir(os.path.join(d, "done")):
        os.mkdir(os.path.join(d, "done"))
    write_json(os.path.join(d, "status.json"), {"state": "starting", "at": time.time()})
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.setsid()  # the supervisor's own session: closing the SSH channel (SIGHUP) does not reach it
        if os.fork() != 0:
            os._exit(0)
        try:
            supervise(d)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    deadline = time.time() + 30
    while time.time() < deadline:
        st = read_json(os.path.join(d, "status.json")) or {}
        if st.get("state") != "starting":
            print(json.dumps(dict(st, ok=st.get("state") != "failed_to_start")))
            return 0
        time.sleep(0.02)
    print(json.dumps({"ok": False, "error": "supervisor did not start torchrun within 30s"}))
    return 1


def pdeathsig():
    # If the supervisor dies (even by SIGKILL), torchrun gets SIGTERM and stops its workers.
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def merge_env(inherited, inherited_cli, run_env, cli_keys):
    """A resumed or restarted attempt's environment: the previous attempt's with this one's on top, except
    that a value an operator once gave with --env is not replaced by the inventory's train_env read again
    at `resume`, only by a new --env. Returns (environment, names given with --env so far)."""
    merged = dict(inherited)
    for key, value in run_env.items():
        if key in inherited_cli and key not in cli_keys:
            continue
        merged[key] = value
    return merged, sorted(set(inherited_cli) | set(cli_keys))


def supervise(d):
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(os.path.join(d, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    spec = read_json(os.path.join(d, "spec.json"))
    run_env = read_json(os.path.join(d, "env.json")) or {}
    if spec.get("inherit_env"):
        # A resumed or restarted run keeps its --env values, which only ever lived on the nodes. The
        # merged result becomes this attempt's env.json, so the next attempt inherits all of it.
        before = read_json(os.path.join(os.path.dirname(spec["inherit_env"]), "spec.json")) or {}
        run_env, spec["cli_env_keys"] = merge_env(
            read_json(spec["inherit_env"]) or {},
            before.get("cli_env_keys") or [],
            run_env,
            spec.get("cli_env_keys") or [],
        )
        write_private_json(os.path.join(d, "env.json"), run_env)
        write_private_json(os.path.join(d, "spec.json"), spec)  # the --env names so far, for the next one
    env = dict(os.environ)
    env.update(run_env)
    status_path = os.path.join(d, "status.json")
    base = {"supervisor_pid": os.getpid(), "started_at": time.time(), "dir": d}
    try:
        workdir = os.path.expanduser(spec.get("workdir") or "~")
        proc = subprocess.Popen(
            spec["argv"],
            cwd=workdir,
            env=env,
            stdin=null,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pdeathsig,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = "could not start torchrun: %s" % exc
        with open(os.path.join(d, "node.log"), "ab") as handle:
            handle.write(("dccli: %s\n" % msg).encode())
        write_json(
            status_path,
            dict(base, state="failed_to_start", error=msg, exit_code=127, signal=None, ended_at=time.time()),
        )
        return
    running = dict(base, state="running", pid=proc.pid, pgid=proc.pid)
    write_json(status_path, running)

    def forward(signum, _frame):
        # Killing the supervisor takes its whole tree: the signal goes to torchrun's process group.
        try:
            os.killpg(proc.pid, signum)
        except OSError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    relay(proc.stdout.fileno(), d)
    code = proc.wait()
    final = dict(
        running,
        state="exited",
        ended_at=time.time(),
        exit_code=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        ranks_done=sorted(int(n) for n in os.listdir(os.path.join(d, "done")) if n.isdigit()),
    )
    write_json(status_path, final)


def relay(fd, d):
    """torchrun's own console output (the agent's lines; the ranks write their own files) -> node.log."""
    node = os.open(os.path.join(d, "node.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        os.write(node, data)


# -------------------------------------------------------------------------------------------- rank
def cmd_rank(d, argv):
    import runpy

    # The rank's stdout and stderr go straight to its own file: nothing in between can drop a line
    # (torchrun's --tee tailer loses a rank's last lines when it exits), and C-level output lands too.
    rank = os.environ.get("RANK", "x")
    # dccli, not torchrun, restarts a run (torchrun gets --max-restarts=0, so its count is always 0):
    # scripts written for torchrun read TORCHELASTIC_RESTART_COUNT, so it carries dccli's count, the
    # same on every node.
    for ours, theirs in (
        ("DCCLI_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT"),
        ("DCCLI_MAX_RESTARTS", "TORCHELASTIC_MAX_RESTARTS"),
    ):
        if ours in os.environ:
            os.environ[theirs] = os.environ[ours]
    fd = os.open(os.path.join(d, "rank-%s.log" % rank), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    script = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    # Reached only when the script finished: a crash of torchrun after this is not the rank's failure.
    with open(os.path.join(d, "done", rank), "w"):
        pass
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------- follow and watch
def ended(d):
    st = read_json(os.path.join(d, "status.json")) or {}
    if st.get("state") in FINAL:
        return True
    # A supervisor that died without writing its end is over too (its processes are torn down by dccli).
    return st.get("state") == "running" and not alive(st.get("supervisor_pid"))


def sources(d):
    """ "n" (node.log: torchrun's own lines) and each rank number with a rank-<r>.log, and their paths."""
    found = {"n": os.path.join(d, "node.log")}
    for name in os.listdir(d):
        if name.startswith("rank-") and name.endswith(".log") and name[5:-4].isdigit():
            found[name[5:-4]] = os.path.join(d, name)
    return found


def cmd_follow(d, offsets, once):
    """Whole lines of every source as `SRC<TAB>line`, each source from its byte offset ("n:0,3:1200").
    Ends at EOF (--once) or once the attempt has ended and everything was sent."""
    pos = {}
    for item in offsets.split(","):
        if ":" in item:
            src, off = item.split(":", 1)
            pos[src] = int(off)
    out = sys.stdout.buffer
    handles = {}
    while True:
        over = ended(d)  # read before the last pass: no line written before the end is missed
        sent = False
        for src, path in sorted(sources(d).items()):
            if src not in handles:
                try:
                    handles[src] = open(path, "rb")
                except OSError:
                    continue
                handles[src].seek(pos.get(src, 0))
            h = handles[src]
            data = h.read(262144)
            if not data:
                continue
            cut = data.rfind(b"\n") + 1
            if cut == 0 and not over:
                h.seek(-len(data), 1)  # half a line: wait for the rest
                continue
            if cut < len(data) and not over:
                h.seek(cut - len(data), 1)
                data = data[:cut]
            tag = src.encode() + b"\t"
            lines = data.split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            out.write(b"".join(tag + line + b"\n" for line in lines))
            sent = True
        if sent:
            out.flush()
            continue
        if over or once:  # (--once leaves a half-written line for the next reader: offsets stay exact)
            return 0
        time.sleep(0.1)


def heartbeat(d):
    st = read_json(os.path.join(d, "status.json")) or {"state": "missing"}
    done = os.path.join(d, "done")
    st["ranks_done"] = sorted(int(n) for n in os.listdir(done) if n.isdigit()) if os.path.isdir(done) else []
    st["supervisor_alive"] = alive(st.get("supervisor_pid"))
    st["group_alive"] = group_alive(st.get("pgid"))
    st["now"] = time.time()
    return st


def cmd_watch(d, interval):
    while True:
        st = heartbeat(d)
        sys.stdout.write(json.dumps(st) + "\n")
        sys.stdout.flush()
        if st.get("state") in FINAL or (st.get("state") == "running" and not st["supervisor_alive"]):
            return 0
        time.sleep(interval)


# -------------------------------------------------------------------------------------------- stop
def signal_all(pgid, run_id, sig):
    if pgid:
        try:
            os.killpg(pgid, sig)
            if sig == signal.SIGTERM:
                os.killpg(
                    pgid, signal.SIGCONT
                )  # a stopped (frozen) process acts on SIGTERM only once resumed
        except OSError:
            pass
    for p in run_processes(run_id):
        try:
            os.kill(p["pid"], sig)
            if sig == signal.SIGTERM:
                os.kill(p["pid"], signal.SIGCONT)
        except OSError:
            pass


def cmd_stop(d, run_id, grace):
    st = read_json(os.path.join(d, "status.json")) or {}
    pgid = st.get("pgid")
    t0 = time.time()
    with open(os.path.join(d, "stop-requested"), "w") as handle:
        handle.write(str(t0))
    signal_all(pgid, run_id, signal.SIGTERM)
    while time.time() - t0 < grace and (group_alive(pgid) or run_processes(run_id)):
        time.sleep(0.05)
    killed = False
    if group_alive(pgid) or run_processes(run_id):
        killed = True
        signal_all(pgid, run_id, signal.SIGKILL)
    deadline = time.time() + 5
    left = run_processes(run_id)
    while left and time.time() < deadline:
        time.sleep(0.05)
        left = run_processes(run_id)
    st = read_json(os.path.join(d, "status.json")) or {}
    while st.get("state") not in FINAL and alive(st.get("supervisor_pid")) and time.time() < deadline:
        time.sleep(0.05)  # the supervisor records the end as soon as torchrun's output closes
        st = read_json(os.path.join(d, "status.json")) or {}
    print(
        json.dumps({"killed": killed, "leftovers": left, "seconds": round(time.time() - t0, 3), "status": st})
    )
    return 0


def main(argv):
    cmd = argv[0] if argv else ""
    if cmd == "start":
        return cmd_start(argv[1])
    if cmd == "rank":
        return cmd_rank(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
    if cmd == "follow":
        return cmd_follow(argv[1], argv[2], argv[3:4] == ["--once"])
    if cmd == "watch":
        return cmd_watch(argv[1], float(argv[2]))
    if cmd == "stop":
        return cmd_stop(argv[1], argv[2], float(argv[3]))
    if cmd == "procs":
        print(json.dumps(run_processes(argv[1])))
        return 0
    sys.stderr.write("usage: supervisor.py start|rank|follow|watch|stop|procs ...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
