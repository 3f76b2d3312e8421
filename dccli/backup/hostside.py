# ruff: noqa: F821, UP031
# Runs ON the host, appended to the remote helper (stdlib only, Python 3.6+, helper.py's names: handler, emit,
# run, which, os, json, time, subprocess, sys), and sent only with backup sessions: run_steps(..., extra=HOST_CODE)
# (never imported on the control node). dccli backup: restic ON the host (see dccli/backup/repo.py for the
# design). The password and the repository URL (a rest-server password may be in it) reach restic through
# pipes (--password-file / --repository-file /proc/self/fd/N): never argv, env or disk. The sftp key sits
# in a 0700 temp dir for this session only.
import atexit
import threading

RCTX = {}
# restic reads these from the environment; a host's own settings must not redirect or break our runs
# (restic refuses -r with --repository-file, and a password command with --password-file).
_RESTIC_ENV = (
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
)


def _rclean():
    tmp = RCTX.pop("tmp", None)
    for path in [os.path.join(tmp, "key"), os.path.join(tmp, "known_hosts"), tmp] if tmp else []:
        try:
            (os.rmdir if path == tmp else os.unlink)(path)
        except OSError:
            continue  # already gone


def _private_dir():
    # A fresh 0700 directory of our own, as tempfile.mkdtemp makes it, without importing tempfile (random,
    # shutil, ...: several ms of the host's CPU before restic can start).
    base = os.environ.get("TMPDIR") or "/tmp"
    while True:
        path = os.path.join(base, "dccli-backup-" + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


atexit.register(_rclean)


def _json_loads(text):
    # The helper core's reader (json's C scanner) when it has one: `import json` (re, enum, decoder...)
    # would cost the host a few ms of CPU before restic starts.
    reader = globals().get("loads")
    if reader is None:
        return json.loads(text)
    try:
        value = reader(text)
    except StopIteration:  # the C scanner's way of saying "not JSON"
        raise ValueError("not JSON") from None
    if value is None:
        raise ValueError("no JSON value")
    return value


def read_follow_line():
    # A late answer from the control node (dccli/backup/sessions.py FollowedConnection): one JSON line
    # after the job on this session's stdin. EOF (the control node gave up) reads as an empty answer.
    line = sys.stdin.readline()
    return _json_loads(line) if line.strip() else {}


@handler("restic_prepare")
def h_restic_prepare(args):
    if args.get("follow"):  # the repository access comes as soon as the control node knows it
        late = read_follow_line()
        if not late or late.get("error"):
            RCTX.clear()
            raise RuntimeError(late.get("error") or "no repository access from the control node")
        args = dict(args, **late)
    sp = args.get("search_path")
    found = (
        which("restic")
        if sp is None
        else next(
            (
                os.path.join(d, "restic")
                for d in sp.split(":")
                if d and os.access(os.path.join(d, "restic"), os.X_OK)
            ),
            None,
        )
    )
    installed = False
    if found is None and args.get("install", True):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        p = subprocess.run(
            ["apt-get", "install", "-y", "-q", "restic"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        if p.returncode != 0:
            raise RuntimeError("apt-get install restic failed: " + p.stdout.decode("utf-8", "replace")[-300:])
        found, installed = which("restic"), True
    if found is None:
        raise RuntimeError("restic is not installed (dccli installs it with apt unless told not to)")
    _rclean()
    RCTX.clear()
    RCTX.update(restic=found, password=args["password"], repo=args["repo"], options=[])
    RCTX["scrub"] = [x for x in args.get("scrub") or [] if x]
    sftp = args.get("sftp")
    if sftp:
        tmp = RCTX["tmp"] = _private_dir()
        files = {}
        for name in ("key", "known_hosts"):
            files[name] = os.path.join(tmp, name)
            with os.fdopen(os.open(files[name], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(sftp[name])
        cmd = [
            a.replace("{key}", files["key"]).replace("{known_hosts}", files["known_hosts"])
            for a in sftp["command"]
        ]
        RCTX["options"] = ["-o", "sftp.command=" + " ".join(cmd)]
    out = {"restic": found, "installed": installed, "hostname": os.uname().nodename}
    if installed or args.get("version"):
        out["version"] = restic_exec(["version"], 30)["stdout"].strip()
    return out


@handler("backup_cleanup")
def h_backup_cleanup(args):
    _rclean()
    return {}


def _refused(line):
    # "server response: 403 Forbidden (403)": a rest-server's refusal, not a passing network error.
    return "401 Unauthorized" in line or "403 Forbidden" in line


def _pipe_fd(text):
    # A pipe holding `text`, read by restic as /proc/self/fd/N: the secret never touches argv, env or disk.
    rfd, wfd = os.pipe()
    os.write(wfd, text.encode() + b"\n")  # far below a pipe's buffer
    os.close(wfd)
    return rfd


def scrub(text):
    # restic prints a rest URL as user:***@, but not every error path is restic's: belt and braces.
    for secret in RCTX.get("scrub") or ():
        text = text.replace(secret, "***")
    return text


def restic_exec(argv, timeout=None, on_line=None, no_retry=False):
    # no_retry: restic 0.14 retries a missing file for ~45 s (a lock deleted between list and cat): give up.
    # It retries a server's refusal (HTTP 401/403: wrong credentials, an append-only rest-server asked to
    # delete) just as long, which never helps: given up on at once too.
    if "restic" not in RCTX:
        raise RuntimeError("restic is not prepared in this session")
    pw_fd, repo_fd = _pipe_fd(RCTX["password"]), _pipe_fd(RCTX["repo"])
    env = dict(os.environ, RESTIC_PROGRESS_FPS="2")
    for name in _RESTIC_ENV:
        env.pop(name, None)
    full = [
        RCTX["restic"],
        "--password-file",
        "/proc/self/fd/%d" % pw_fd,
        "--repository-file",
        "/proc/self/fd/%d" % repo_fd,
    ]
    full += RCTX["options"] + list(argv)
    try:
        proc = subprocess.Popen(
            full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            pass_fds=(pw_fd, repo_fd),
            env=env,
        )
    finally:
        os.close(pw_fd)
        os.close(repo_fd)
    errs, out = [], []

    def drain():
        for x in proc.stderr:
            errs.append(x.decode("utf-8", "replace").rstrip("\n"))
            if "returned error, retrying" in errs[-1] and (no_retry or _refused(errs[-1])):
                proc.kill()

    t = threading.Thread(target=drain)
    t.daemon = True
    t.start()
    killer = threading.Timer(timeout, proc.kill) if timeout else None
    if killer:
        killer.start()
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if on_line is None or on_line(line):
            out.append(line)
    rc = proc.wait()
    if killer:
        killer.cancel()
    t.join(5)
    stderr = "\n".join(errs[-50:])
    if rc != 0 and "unknown flag: --repository-file" in stderr:
        stderr = "restic on this host is too old (dccli needs restic 0.12 or later): " + stderr
    return {"rc": rc, "stdout": scrub("\n".join(out)), "stderr": scrub(stderr)}


def _glob_escape(path):
    import re as _re

    return _re.sub(r"([\[\]*?\\])", r"\\\1", path)  # restic patterns: filepath.Match syntax


def checkpoint_scan(rule):
    # Each subdirectory of each rule dir is a checkpoint: complete with the marker (or a pattern match).
    complete, incomplete = [], []
    for root in rule["dirs"]:
        try:
            names = sorted(os.listdir(root))
        except OSError:
            continue  # a missing root is reported by the source check
        for name in names:
            d = os.path.join(root, name)
            if not os.path.isdir(d) or os.path.islink(d):
                continue
            try:
                inside = os.listdir(d)
            except OSError:
                inside = []
            if rule.get("marker"):
                ok = os.path.isfile(os.path.join(d, rule["marker"]))
            else:
                import fnmatch

                ok = any(fnmatch.fnmatchcase(n, rule["pattern"]) for n in inside)
            (complete if ok else incomplete).append(d)
    return complete, incomplete


def source_problems(paths):
    # Sources restic 0.14 would skip with exit 0 (missing) or fail on (unreadable): a partial backup.
    problems = []
    for path in paths:
        try:
            isdir = os.stat(path).st_mode & 0o170000 == 0o040000
        except OSError as exc:
            problems.append("%s: %s" % (path, exc.strerror or exc))
            continue
        if not os.access(path, os.R_OK | (os.X_OK if isdir else 0)):
            problems.append("%s: not readable" % path)
    return problems


def lock_is_own_and_dead(lock, hostname, alive):
    # Provably ours and dead: it names this host, and its PID is gone from this host's PID namespace.
    return lock.get("hostname") == hostname and not alive(lock.get("pid"))


def pid_alive(pid):
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _lock_time(text):
    import datetime
    import re as _re

    m = _re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text or "")
    if not m:
        return 0.0
    t = (
        datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S") - datetime.datetime(1970, 1, 1)
    ).total_seconds()
    z = m.group(3) or "Z"
    if z != "Z":
        t -= (int(z[1:3]) * 3600 + int(z[4:6]) * 60) * (1 if z[0] == "+" else -1)
    return t + float(m.group(2) or 0)


def clear_own_stale_locks(alive=pid_alive, stale_after_s=1500, ids=None):
    # `restic unlock` removes this host's locks with a dead PID AND any lock older than 30 min, so it
    # runs only when every lock it could remove is one we proved ours-and-dead (no other lock > 25 min).
    if ids is None:
        listed = restic_exec(["list", "locks", "--no-lock"], 120)
        if listed["rc"] != 0:
            return {"error": "restic list locks: " + listed["stderr"][-300:], "removed": []}
        ids = listed["stdout"].split()
    host, own, kept, old = os.uname().nodename, [], [], []
    for lock_id in ids:
        cat = restic_exec(["cat", "lock", lock_id, "--no-lock"], 60, no_retry=True)
        try:
            lock = _json_loads(cat["stdout"])
        except ValueError:
            continue  # removed meanwhile
        entry = {"id": lock_id[:8], "hostname": lock.get("hostname"), "pid": lock.get("pid")}
        if lock_is_own_and_dead(lock, host, alive):
            own.append(entry)
        else:
            kept.append(entry)
            if time.time() - _lock_time(lock.get("time")) > stale_after_s:
                old.append(entry)
    result = {"removed": [], "kept": kept, "blocked_by": old}
    if own and not old:
        out = restic_exec(["unlock"], 120)
        result["removed" if out["rc"] == 0 else "not_removed"] = own
    elif own:
        result["not_removed"] = own
    return result


@handler("restic_unlock_own")
def h_restic_unlock_own(args):
    return clear_own_stale_locks()


@handler("restic_backup")
def h_restic_backup(args):
    t0 = time.time()
    result = {"missing": source_problems(args["paths"]), "incomplete": [], "complete": []}
    if args.get("checkpoints"):
        result["complete"], result["incomplete"] = checkpoint_scan(args["checkpoints"])
    if result["missing"]:
        result["rc"] = None  # nothing ran: a partial backup is a failure, not a smaller success
        return result
    # Our dead locks are cleared while the backup runs (no wall time); our live lock has a live PID.
    cleared, late = {}, {}

    def clear():
        ids = args.get("lock_ids")  # the locks there were before this run (None: unknown, list them)
        if args.get("lock_ids_follow"):  # ... told by the control node once it has listed them
            late.update(read_follow_line())
            ids = late.get("lock_ids")
        if ids != []:
            cleared.update(clear_own_stale_locks(ids=ids))

    clearer = threading.Thread(target=clear)
    clearer.daemon = True
    clearer.start()
    argv = list(args["argv"])
    tail = argv.index("--")
    for d in result["incomplete"]:
        argv[tail:tail] = ["--exclude", _glob_escape(d)]
    last = [0.0]

    def on_line(line):
        if '"message_type":"status"' not in line:
            return True
        if time.time() - last[0] >= 0.5:
            last[0] = time.time()
            s = _json_loads(line)
            emit(
                ev="progress",
                percent=s.get("percent_done", 0),
                bytes_done=s.get("bytes_done", 0),
                total_bytes=s.get("total_bytes", 0),
            )
        return False

    t1 = time.time()
    checks_s = t1 - t0
    out = restic_exec(argv, args.get("timeout"), on_line)
    restic_s = time.time() - t1
    clearer.join()
    result["locks"] = cleared
    retry = out["rc"] != 0 and "already locked" in out["stderr"] and cleared.get("removed")
    # Our key line was missing on the storage host and went back in while restic started: it may have
    # raced it (a storage host whose authorized_keys was edited). Once more, now that the key is there.
    retry = retry or (
        out["rc"] != 0 and late.get("key_added") and '"message_type":"summary"' not in out["stdout"]
    )
    if retry:
        t1 = time.time()
        out = restic_exec(argv, args.get("timeout"), on_line)
        restic_s += time.time() - t1
    result.update(out)
    result["timings"] = {"checks_s": checks_s, "restic_s": restic_s}
    return result


@handler("restic_cmd")
def h_restic_cmd(args):
    return restic_exec(args["argv"], args.get("timeout"), no_retry=args.get("no_retry", False))
