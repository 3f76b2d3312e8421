# Backup step kinds (dccli backup): restic run ON the host. Runs in helper.py's namespace (stdlib only,
# Python 3.6+). Secrets (the repository password, the dedicated sftp key) arrive in the job on stdin:
# the password reaches restic through a pipe (--password-file /proc/self/fd/N), never argv, env or disk;
# the sftp key lives in a 0700 temp dir for the session only and is removed by backup_cleanup (and atexit).
import atexit
import fnmatch
import re as _re
import shutil
import stat as _stat
import tempfile

RESTIC_CTX = {}
_STATUS_EVERY_S = 0.5


def _restic_cleanup():
    tmp = RESTIC_CTX.pop("tmp", None)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


atexit.register(_restic_cleanup)


@handler("restic_prepare")
def h_restic_prepare(args):
    """Find (or apt-install) restic, remember password/repository, write the sftp key for this session."""
    found = which("restic") if args.get("search_path") is None else _which_in(args["search_path"], "restic")
    installed = False
    if found is None and args.get("install", True):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        proc = subprocess.run(["apt-get", "install", "-y", "-q", "restic"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0:
            tail = proc.stdout.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise RuntimeError("restic is missing and apt-get install restic failed: %s" % " | ".join(tail))
        found, installed = which("restic"), True
    if found is None:
        raise RuntimeError("restic is not installed (dccli installs it with apt unless told not to)")
    RESTIC_CTX.clear()
    RESTIC_CTX.update(restic=found, password=args["password"], repo=args["repo"], options=[])
    sftp = args.get("sftp")
    if sftp:
        tmp = tempfile.mkdtemp(prefix="dccli-backup-")  # 0700
        RESTIC_CTX["tmp"] = tmp
        key, known = os.path.join(tmp, "key"), os.path.join(tmp, "known_hosts")
        for path, text in ((key, sftp["key"]), (known, sftp["known_hosts"])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        command = [a.replace("{key}", key).replace("{known_hosts}", known) for a in sftp["command"]]
        RESTIC_CTX["options"] = ["-o", "sftp.command=" + " ".join(command)]
    version = restic_exec(["version"], timeout=30)
    return {"restic": found, "installed": installed, "version": version["stdout"].strip(),
            "hostname": os.uname().nodename}


@handler("backup_cleanup")
def h_backup_cleanup(args):
    _restic_cleanup()
    return {}


def _which_in(search_path, name):
    for d in search_path.split(":"):
        p = os.path.join(d, name)
        if d and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def restic_exec(argv, timeout=None, on_line=None):
    """restic with the session's repository and password; the password goes through a pipe."""
    ctx = RESTIC_CTX
    rfd, wfd = os.pipe()
    try:
        os.write(wfd, ctx["password"].encode() + b"\n")  # far below a pipe's buffer: never blocks
    finally:
        os.close(wfd)
    env = dict(os.environ, RESTIC_REPOSITORY=ctx["repo"], RESTIC_PROGRESS_FPS="2")
    env.pop("RESTIC_PASSWORD", None)
    full = [ctx["restic"], "--password-file", "/proc/self/fd/%d" % rfd] + ctx["options"] + list(argv)
    try:
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                pass_fds=(rfd,), env=env)
    finally:
        os.close(rfd)
    errs = []

    def drain_err():
        for raw in proc.stderr:
            errs.append(raw.decode("utf-8", "replace").rstrip("\n"))

    import threading

    t = threading.Thread(target=drain_err, daemon=True)
    t.start()
    out = []
    deadline = time.time() + timeout if timeout else None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if on_line is None or on_line(line):
            out.append(line)
        if deadline and time.time() > deadline:
            proc.kill()
            break
    rc = proc.wait()
    t.join(5)
    return {"rc": rc, "stdout": "\n".join(out), "stderr": "\n".join(errs[-50:])}


def _glob_escape(path):
    # restic patterns use filepath.Match syntax: escape its metacharacters in a literal path.
    return _re.sub(r"([\[\]*?\\])", r"\\\1", path)


def checkpoint_scan(rule):
    """(complete, incomplete) checkpoint directories under each of rule['dirs']."""
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
                incomplete.append(d)
                continue
            if rule.get("marker"):
                ok = rule["marker"] in inside and os.path.isfile(os.path.join(d, rule["marker"]))
            else:
                ok = any(fnmatch.fnmatchcase(n, rule["pattern"]) for n in inside)
            (complete if ok else incomplete).append(d)
    return complete, incomplete


def source_problems(paths):
    """Sources restic would silently skip (missing) or fail on (unreadable): a partial backup."""
    problems = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            problems.append("%s: %s" % (path, exc.strerror or exc))
            continue
        need = os.R_OK | (os.X_OK if _stat.S_ISDIR(st.st_mode) else 0)
        if not os.access(path, need):
            problems.append("%s: not readable" % path)
    return problems


def lock_is_own_and_dead(lock, hostname, alive):
    """A lock is provably ours and dead when it names this host and its PID is gone (in this host's PID
    namespace, which is the one restic recorded it in)."""
    return lock.get("hostname") == hostname and not alive(lock.get("pid"))


def pid_alive(pid):
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_own_stale_locks(now=None, alive=pid_alive, stale_after_s=1500):
    """Remove this host's dead restic locks, and only those. `restic unlock` removes what restic calls
    stale: this host's locks whose PID is gone AND any lock older than 30 min. So it runs only when every
    lock it could remove is one we proved ours-and-dead: no foreign or live lock older than 25 minutes."""
    listed = restic_exec(["list", "locks", "--no-lock"], timeout=120)
    if listed["rc"] != 0:
        return {"error": "restic list locks: " + listed["stderr"][-300:], "removed": [], "kept": []}
    hostname = os.uname().nodename
    now = now or time.time()
    own_dead, blockers, kept = [], [], []
    for lock_id in [x.strip() for x in listed["stdout"].splitlines() if x.strip()]:
        cat = restic_exec(["cat", "lock", lock_id, "--no-lock"], timeout=60)
        if cat["rc"] != 0:
            continue  # removed meanwhile
        try:
            lock = json.loads(cat["stdout"])
        except ValueError:
            continue
        entry = {"id": lock_id[:8], "hostname": lock.get("hostname"), "pid": lock.get("pid"),
                 "exclusive": bool(lock.get("exclusive"))}
        if lock_is_own_and_dead(lock, hostname, alive):
            own_dead.append(entry)
        else:
            kept.append(entry)
            if now - _lock_time(lock.get("time")) > stale_after_s:
                blockers.append(entry)
    result = {"removed": [], "kept": kept, "blocked_by": blockers}
    if own_dead and not blockers:
        out = restic_exec(["unlock"], timeout=120)
        if out["rc"] == 0:
            result["removed"] = own_dead
        else:
            result["error"] = "restic unlock: " + out["stderr"][-300:]
    elif own_dead:
        result["not_removed"] = own_dead
    return result


def _lock_time(text):
    # restic writes RFC 3339 with nanoseconds and a zone, e.g. 2026-11-29T14:01:02.123456789+00:00.
    import datetime

    if not isinstance(text, str):
        return 0.0
    m = _re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text)
    if not m:
        return 0.0
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    zone = m.group(3) or "Z"
    offset = 0 if zone == "Z" else (int(zone[1:3]) * 60 + int(zone[4:6])) * (1 if zone[0] == "+" else -1)
    epoch = (base - datetime.datetime(1970, 1, 1)).total_seconds() - offset * 60
    return epoch + float("0." + (m.group(2) or "0"))


@handler("restic_unlock_own")
def h_restic_unlock_own(args):
    return clear_own_stale_locks()


@handler("restic_backup")
def h_restic_backup(args):
    """Check sources, exclude incomplete checkpoints, clear our own stale locks, run `restic backup --json`."""
    result = {"missing": source_problems(args["paths"]), "incomplete": [], "complete": []}
    rule = args.get("checkpoints")
    if rule:
        result["complete"], result["incomplete"] = checkpoint_scan(rule)
    if result["missing"]:
        result["rc"] = None  # nothing ran: a partial backup is a failure, not a smaller success
        return result
    result["locks"] = clear_own_stale_locks()
    argv = list(args["argv"])
    tail = argv.index("--")
    excludes = []
    for d in result["incomplete"]:
        excludes += ["--exclude", _glob_escape(d)]
    argv[tail:tail] = excludes
    last = [0.0]

    def on_line(line):
        if '"message_type":"status"' not in line:
            return True
        if time.time() - last[0] >= _STATUS_EVERY_S:
            last[0] = time.time()
            try:
                s = json.loads(line)
                emit(ev="progress", id=args.get("step_id"), percent=s.get("percent_done", 0),
                     bytes_done=s.get("bytes_done", 0), total_bytes=s.get("total_bytes", 0))
            except ValueError:
                pass
        return False

    out = restic_exec(argv, timeout=args.get("timeout"), on_line=on_line)
    result.update(out)
    return result


@handler("restic_cmd")
def h_restic_cmd(args):
    """Any restic command of dccli's (snapshots, restore, check, forget, prune, init, cat config)."""
    return restic_exec(args["argv"], timeout=args.get("timeout"))
