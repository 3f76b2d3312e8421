# Playbook session core, on the host: an interactive loop over stdin (one JSON task per line, one JSON
# result per line), so the control node can template each task with the results of the previous ones
# while the session, the python3 process and the SSH channel stay open for the whole play.
import base64
import contextlib
import grp
import hashlib
import pwd
import shutil
import stat as stat_mod
import tempfile

PB_MODULES = {}


def module(name):
    def deco(fn):
        PB_MODULES[name] = fn
        return fn

    return deco


class ModuleFailed(Exception):
    def __init__(self, msg, **extra):
        Exception.__init__(self, msg)
        self.extra = extra


def pb_main():
    emit(ev="hello", python=sys.version.split()[0], pid=os.getpid(), uid=os.getuid())
    os.umask(0o022)  # like a login shell under sshd: new files 0644, directories 0755 (Ansible's results)
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        job = loads(line) or {}
        if job.get("kind") == "end":
            emit(ev="end")
            return
        fn = PB_MODULES.get(job.get("kind"))
        t0 = time.time()
        if fn is None:
            emit(
                ev="result",
                id=job.get("id"),
                ok=False,
                error="unknown module %r" % job.get("kind"),
                duration_s=0.0,
            )
            continue
        args = job.get("args") or {}
        ctx = {"check": bool(job.get("check")), "diff": bool(job.get("diff")), "env": job.get("env") or {}}
        try:
            data = fn(args, ctx)
        except ModuleFailed as exc:
            data = dict(exc.extra, failed=True, msg=str(exc))
            data.setdefault("changed", False)
        except Exception as exc:  # a module bug or an OS error: the task fails, the session goes on
            data = {"failed": True, "changed": False, "msg": "%s: %s" % (type(exc).__name__, exc)}
        emit(ev="result", id=job.get("id"), ok=True, data=data, duration_s=time.time() - t0)


def as_list(value):
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


@module("ping")
def m_ping(args, ctx):
    return {"changed": False, "ping": "pong"}


def parse_mode(mode):
    if mode is None:
        return None
    if isinstance(mode, int):
        return mode
    text = str(mode).strip()
    if text and all(c in "01234567" for c in text):
        return int(text, 8)
    raise ModuleFailed("mode must be octal (e.g. '0644'), got %r; symbolic modes are not supported" % mode)


def lookup_uid(owner):
    if owner is None:
        return None
    try:
        return pwd.getpwnam(str(owner)).pw_uid
    except KeyError:
        if str(owner).isdigit():
            return int(owner)
        raise ModuleFailed("chown failed: failed to look up user %s" % owner) from None


def lookup_gid(group):
    if group is None:
        return None
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        if str(group).isdigit():
            return int(group)
        raise ModuleFailed("chgrp failed: failed to look up group %s" % group) from None


def set_attrs(path, args, check, diff=None, follow=True):
    """Owner, group, mode as Ansible's set_fs_attributes_if_different: returns True when something differs."""
    mode, uid, gid = (
        parse_mode(args.get("mode")),
        lookup_uid(args.get("owner")),
        lookup_gid(args.get("group")),
    )
    if mode is None and uid is None and gid is None:
        return False
    st = os.stat(path) if follow else os.lstat(path)
    changed = False
    if (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid):
        changed = True
        if not check:
            os.lchown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    if mode is not None and stat_mod.S_IMODE(st.st_mode) != mode and not stat_mod.S_ISLNK(st.st_mode):
        changed = True
        if diff is not None:
            diff.setdefault("before", {})["mode"] = "%04o" % stat_mod.S_IMODE(st.st_mode)
            diff.setdefault("after", {})["mode"] = "%04o" % mode
        if not check:
            os.chmod(path, mode)
    return changed


def atomic_write(path, data):
    """Write through a temp file in the same directory, keeping an existing file's mode and owner."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real) or "."
    fd, tmp = tempfile.mkstemp(prefix=".dccli-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if os.path.exists(real):
            st = os.stat(real)
            os.chmod(tmp, stat_mod.S_IMODE(st.st_mode))
            with contextlib.suppress(OSError):
                os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, 0o666 & ~current_umask())
        os.rename(tmp, real)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def backup_file(path):
    stamp = time.strftime("%Y-%m-%d@%H:%M:%S~")
    dest = "%s.%s.%s" % (path, os.getpid(), stamp)
    shutil.copy2(path, dest)
    return dest


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def sha1_file(path):
    h = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def text_diff(path, before, after):
    return {"before": before, "after": after, "before_header": path, "after_header": path}


def b64(data):
    return base64.b64decode(data.encode("ascii")) if data is not None else None


def run_env(argv, env, cwd=None, stdin=None, shell=False, timeout=None, executable=None):
    full = dict(os.environ)
    full.update({str(k): str(v) for k, v in (env or {}).items()})
    full.setdefault("LANG", "C.UTF-8")
    try:
        proc = subprocess.run(
            argv,
            shell=shell,
            executable=executable,
            cwd=cwd,
            env=full,
            input=stdin.encode() if stdin is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        return 2, "", "[Errno 2] No such file or directory: %r" % (exc.filename or argv[0])
    except subprocess.TimeoutExpired:
        return -9, "", "timed out after %ss" % timeout
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


@module("gather_facts")
def m_gather_facts(args, ctx):
    data = HANDLERS["facts"](args)
    data["service_mgr"] = "systemd" if os.path.isdir("/run/systemd/system") else "sysvinit"
    data["user"] = pwd.getpwuid(os.getuid()).pw_name
    data["env_home"] = os.environ.get("HOME", "")
    return {"changed": False, "raw": data}
