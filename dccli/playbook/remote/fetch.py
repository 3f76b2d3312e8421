# Playbook modules that fetch software: pip (virtualenvs, wheelhouses), get_url, unarchive.
import fnmatch
import re as _re
import shlex


def pip_installed(pip, env):
    rc, out, err = run_env([pip, "list", "--format=json", "--disable-pip-version-check"], env, timeout=300)
    if rc != 0:
        raise ModuleFailed("pip list failed: %s" % err.strip())
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out or "[]")}


def spec_satisfied(spec, installed):
    m = _re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", spec)
    if not m:
        return False
    name = _re.sub(r"\[.*\]", "", m.group(1)).lower().replace("_", "-")
    have = installed.get(name)
    if have is None:
        return False
    for cond in [c.strip() for c in m.group(2).split(",") if c.strip()]:
        op, ver = _re.match(r"(===|==|!=|>=|<=|~=|>|<)?\s*(.*)", cond).groups()
        key = lambda v: [int(x) if x.isdigit() else x for x in _re.split(r"[.+-]", v)]  # noqa: E731
        # PEP 440: a specifier without a local label (+cu121) matches any local build of that version
        mine = have if "+" in ver else have.split("+", 1)[0]
        try:
            a, b = key(mine), key(ver.replace("*", "0"))
            ok = {
                "==": fnmatch.fnmatch(mine, ver) if "*" in ver else a == b,
                "===": have == ver,
                "!=": a != b,
                ">=": a >= b,
                "<=": a <= b,
                ">": a > b,
                "<": a < b,
                "~=": a >= b,
                None: True,
            }[op]
        except TypeError:
            ok = mine == ver
        if not ok:
            return False
    return True


@module("pip")
def m_pip(args, ctx):
    env = ctx["env"]
    venv = args.get("virtualenv")
    state = args.get("state") or "present"
    names = as_list(args.get("name"))
    if args.get("version") and len(names) == 1:
        names = ["%s==%s" % (names[0], args["version"])]
    res = {"changed": False, "virtualenv": venv, "name": names, "requirements": args.get("requirements")}
    if venv:
        venv = os.path.expanduser(venv)
        pip = os.path.join(venv, "bin", "pip")
        if not os.path.exists(pip):
            res["changed"] = True
            if ctx["check"]:
                return res
            cmd = shlex.split(args.get("virtualenv_command") or "python3 -m venv")
            if args.get("virtualenv_site_packages"):
                cmd.append("--system-site-packages")
            rc, out, err = run_env([*cmd, venv], env, timeout=600)
            if rc != 0:
                raise ModuleFailed("creating the virtualenv failed: %s" % (err.strip() or out.strip()), rc=rc)
    else:
        pip = args.get("executable") or which("pip3") or "pip3"
    extra = shlex.split(args.get("extra_args") or "")
    base = [pip, "--disable-pip-version-check"]
    if args.get("requirements"):
        cmd = [*base, "install", "-r", args["requirements"], *extra]
        if ctx["check"]:
            return res
        rc, out, err = run_env(cmd, env, cwd=args.get("chdir"), timeout=3600)
        res.update(stdout=out, stderr=err, cmd=" ".join(cmd))
        if rc != 0:
            raise ModuleFailed("pip install failed: %s" % (err.strip() or out.strip())[-3000:], **res)
        res["changed"] = res["changed"] or "Successfully installed" in out
        return res
    installed = pip_installed(pip, env) if os.path.exists(pip) or not venv else {}
    if state == "absent":
        todo = [n for n in names if _re.split(r"[<>=!~\[ ]", n)[0].lower().replace("_", "-") in installed]
        cmd = [*base, "uninstall", "-y", *todo]
    elif state == "latest":
        todo = names
        cmd = [*base, "install", "-U", *extra, *todo]
    else:
        todo = [n for n in names if state == "forcereinstall" or not spec_satisfied(n, installed)]
        cmd = base + ["install"] + (["--force-reinstall"] if state == "forcereinstall" else []) + extra + todo
    if not todo:
        return res
    if ctx["check"]:
        res["changed"] = True
        return res
    rc, out, err = run_env(cmd, env, cwd=args.get("chdir"), timeout=3600)
    res.update(stdout=out, stderr=err, cmd=" ".join(cmd))
    if rc != 0:
        raise ModuleFailed("pip failed: %s" % (err.strip() or out.strip())[-3000:], **res)
    res["changed"] = state != "latest" or "Successfully installed" in out or res["changed"]
    return res


def fetch(url, timeout, headers):
    import urllib.request

    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


@module("get_url")
def m_get_url(args, ctx):
    url, dest = args["url"], os.path.expanduser(args["dest"])
    if os.path.isdir(dest):
        dest = os.path.join(dest, os.path.basename(url.split("?")[0]) or "index.html")
    algo, want = None, None
    if args.get("checksum"):
        algo, _, want = str(args["checksum"]).partition(":")
        want = want.strip().lower()
        if algo not in hashlib.algorithms_available:
            raise ModuleFailed("unsupported checksum algorithm %r" % algo)
    res = {"url": url, "dest": dest, "changed": False}
    exists = os.path.isfile(dest)
    need = not exists or bool(args.get("force"))
    if exists and want:
        h = hashlib.new(algo)
        h.update(read_bytes(dest))
        need = h.hexdigest() != want
    if need:
        if ctx["check"]:
            res["changed"] = True
            return res
        try:
            data = fetch(url, float(args.get("timeout", 10)), args.get("headers"))
        except Exception as exc:
            raise ModuleFailed("Request failed: %s" % exc, url=url, dest=dest) from None
        if want:
            h = hashlib.new(algo)
            h.update(data)
            if h.hexdigest() != want:
                raise ModuleFailed(
                    "The checksum for %s did not match %s; it was %s." % (dest, want, h.hexdigest())
                )
        if not exists or read_bytes(dest) != data:
            if exists and args.get("backup"):
                res["backup_file"] = backup_file(dest)
            atomic_write(dest, data)
            res["changed"] = True
        res["checksum_src"] = hashlib.sha1(data).hexdigest()
    if os.path.exists(dest):
        res["changed"] = set_attrs(dest, args, ctx["check"]) or res["changed"]
    return res


@module("unarchive")
def m_unarchive(args, ctx):
    import io
    import tarfile
    import zipfile

    dest = os.path.expanduser(args["dest"])
    if args.get("creates") and os.path.exists(args["creates"]):
        return {"changed": False, "dest": dest, "msg": "skipped, since %s exists" % args["creates"]}
    if not os.path.isdir(dest):
        raise ModuleFailed("Destination '%s' is not a directory" % dest)
    data = b64(args.get("_data")) if args.get("_data") else read_bytes(args["src"])
    members = []  # (name, is_dir, bytes or None, mode)
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                is_dir = info.filename.endswith("/")
                members.append(
                    (
                        info.filename.rstrip("/"),
                        is_dir,
                        None if is_dir else zf.read(info),
                        (info.external_attr >> 16) & 0o7777 or None,
                    )
                )
    else:
        try:
            tf = tarfile.open(fileobj=io.BytesIO(data))  # noqa: SIM115 (closed by the with below)
        except tarfile.TarError as exc:
            raise ModuleFailed("Failed to find handler for archive: %s" % exc) from None
        with tf:
            for m in tf.getmembers():
                if m.issym() or m.islnk() or not (m.isfile() or m.isdir()):
                    continue
                members.append((m.name, m.isdir(), None if m.isdir() else tf.extractfile(m).read(), m.mode))
    changed = False
    for name, is_dir, content, mode in members:
        target = os.path.normpath(os.path.join(dest, name))
        if not (target + "/").startswith(os.path.normpath(dest) + "/"):
            raise ModuleFailed("archive member %r escapes dest" % name)
        if is_dir:
            if not os.path.isdir(target):
                changed = True
                if not ctx["check"]:
                    os.makedirs(target)
            continue
        if os.path.isfile(target) and read_bytes(target) == content:
            continue
        changed = True
        if not ctx["check"]:
            if not os.path.isdir(os.path.dirname(target)):
                os.makedirs(os.path.dirname(target))
            atomic_write(target, content)
            if mode:
                os.chmod(target, mode)
    if os.path.exists(dest):
        changed = set_attrs(dest, args, ctx["check"]) or changed
    return {
        "changed": changed,
        "dest": dest,
        "files": [m[0] for m in members] if args.get("list_files") else [],
    }
