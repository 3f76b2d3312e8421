# Playbook modules for packages and downloads: apt, dpkg_selections, apt_repository, deb822_repository, pip,
# get_url, unarchive. Decisions (changed or not) follow the Ansible modules of the same names.
import fnmatch
import glob
import re as _re

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}


def dpkg_version(name, env):
    rc, out, _ = run_env(["dpkg-query", "-W", "-f=${Status}\t${Version}", name], env)
    if rc != 0:
        return None
    status, _, version = out.partition("\t")
    return version if status.split()[-1:] == ["installed"] else None


def apt_versions(name, env):
    rc, out, _ = run_env(["apt-cache", "madison", name], env)
    return (
        [
            line.split("|")[1].strip()
            for line in out.splitlines()
            if line.count("|") >= 2 and line.split("|")[0].strip() == name
        ]
        if rc == 0
        else []
    )


def apt_candidate(name, env):
    _rc, out, _ = run_env(["apt-cache", "policy", name], env)
    m = _re.search(r"Candidate:\s*(\S+)", out)
    return m.group(1) if m and m.group(1) != "(none)" else None


def apt_update(env, cache_valid_time=0):
    stamp = "/var/lib/apt/periodic/update-success-stamp"
    lists = "/var/lib/apt/lists"
    if cache_valid_time:
        newest = max([os.path.getmtime(p) for p in (stamp, lists) if os.path.exists(p)] or [0])
        if time.time() - newest < int(cache_valid_time):
            return False
    rc, out, err = run_env(["apt-get", "update", "-q"], dict(APT_ENV, **env), timeout=900)
    if rc != 0:
        raise ModuleFailed("Failed to update apt cache: %s" % (err.strip() or out.strip())[-2000:], rc=rc)
    return True


@module("apt")
def m_apt(args, ctx):
    env = ctx["env"]
    names = as_list(args.get("name") or args.get("pkg") or args.get("package"))
    state = args.get("state") or "present"
    res = {"changed": False, "cache_updated": False}
    if args.get("update_cache") and not ctx["check"]:
        res["cache_updated"] = apt_update(env, args.get("cache_valid_time") or 0)
    if not names and not args.get("upgrade"):
        return res
    todo, removals, fixed = [], [], []
    for spec in names:
        name, _, version = spec.partition("=")
        installed = dpkg_version(name, env)
        if state in ("absent",):
            if installed is not None:
                removals.append(name)
            continue
        if version:
            if installed is not None and fnmatch.fnmatch(installed, version):
                continue
            if any(c in version for c in "*?["):
                matches = [v for v in apt_versions(name, env) if fnmatch.fnmatch(v, version)]
                if not matches:
                    raise ModuleFailed("No package matching '%s' is available" % spec)
                version = matches[0]  # apt-cache madison lists the highest first
            todo.append("%s=%s" % (name, version))
        elif installed is None:
            todo.append(name)
        elif state == "latest":
            cand = apt_candidate(name, env)
            if cand and cand != installed:
                todo.append(name)
        fixed.append(name)
    if not todo and not removals:
        return res
    res["changed"] = True
    res["packages"] = todo + removals
    if ctx["check"]:
        return res
    full_env = dict(APT_ENV, **env)
    if todo:
        cmd = [
            "apt-get",
            "-y",
            "-q",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ]
        if args.get("allow_downgrade"):
            cmd.append("--allow-downgrades")
        if args.get("allow_change_held_packages"):
            cmd.append("--allow-change-held-packages")
        if args.get("install_recommends") is False:
            cmd.append("--no-install-recommends")
        if args.get("default_release"):
            cmd += ["-t", str(args["default_release"])]
        cmd += ["install", *todo]
        rc, out, err = run_env(cmd, full_env, timeout=3600)
        res.update(stdout=out, stderr=err, stdout_lines=out.splitlines(), rc=rc)
        if rc != 0:
            raise ModuleFailed(
                "'%s' failed: %s" % (" ".join(cmd), (err.strip() or out.strip())[-2000:]), **res
            )
    if removals:
        cmd = ["apt-get", "-y", "-q", "purge" if args.get("purge") else "remove", *removals]
        if args.get("autoremove"):
            cmd.insert(3, "--auto-remove")
        rc, out, err = run_env(cmd, full_env, timeout=3600)
        res.update(stdout=out, stderr=err, rc=rc)
        if rc != 0:
            raise ModuleFailed(
                "'%s' failed: %s" % (" ".join(cmd), (err.strip() or out.strip())[-2000:]), **res
            )
    return res


@module("dpkg_selections")
def m_dpkg_selections(args, ctx):
    name, selection = args["name"], args["selection"]
    rc, out, _ = run_env(["dpkg", "--get-selections", name], ctx["env"])
    current = out.split()[1] if rc == 0 and len(out.split()) >= 2 else "not present"
    if current == selection:
        return {"changed": False, "before": current, "after": selection}
    if not ctx["check"]:
        rc, out, err = run_env(["dpkg", "--set-selections"], ctx["env"], stdin="%s %s\n" % (name, selection))
        if rc != 0:
            raise ModuleFailed("dpkg --set-selections failed: %s" % err.strip())
    return {"changed": True, "before": current, "after": selection}


def sources_lines():
    found = set()
    files = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for path in files:
        for line in (read_text(path) or "").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.add((" ".join(line.split()), path))
    return found


def repo_filename(repo):
    m = _re.search(r"(?:https?|file|ftp):/*([^\s\]]+)", repo)
    base = (m.group(1) if m else repo).strip("/")
    return _re.sub(r"[^a-zA-Z0-9_.-]", "_", base)


@module("apt_repository")
def m_apt_repository(args, ctx):
    repo = " ".join(str(args["repo"]).split())
    state = args.get("state") or "present"
    if repo.startswith("ppa:"):
        raise ModuleFailed("ppa: repositories are not supported by dccli")
    name = args.get("filename") or repo_filename(repo)
    path = "/etc/apt/sources.list.d/%s.list" % name
    existing = [p for line, p in sources_lines() if line == repo]
    before = read_text(path) or ""
    if state == "present":
        if existing:
            return {"changed": False, "repo": repo, "state": state}
        after = before + ("" if not before or before.endswith("\n") else "\n") + repo + "\n"
        files = [path]
    else:
        if not existing:
            return {"changed": False, "repo": repo, "state": state}
        files = sorted(set(existing))
        after = None
    res = {
        "changed": True,
        "repo": repo,
        "state": state,
        "sources_added" if state == "present" else "sources_removed": files,
        "diff": [text_diff(path, before, after if after is not None else "")],
    }
    if ctx["check"]:
        return res
    if state == "present":
        atomic_write(path, after.encode())
        os.chmod(path, parse_mode(args.get("mode")) or 0o644)
    else:
        for f in files:
            kept = [
                ln
                for ln in (read_text(f) or "").splitlines(True)
                if " ".join(ln.split("#", 1)[0].split()) != repo
            ]
            atomic_write(f, "".join(kept).encode())
    if args.get("update_cache", True):
        apt_update(ctx["env"])
    return res


@module("deb822_repository")
def m_deb822_repository(args, ctx):
    name = args["name"]
    path = "/etc/apt/sources.list.d/%s.sources" % name
    before = read_text(path)
    if (args.get("state") or "present") == "absent":
        if before is None:
            return {"changed": False, "dest": path}
        if not ctx["check"]:
            os.unlink(path)
        return {"changed": True, "dest": path, "diff": [text_diff(path, before, "")]}
    fields = [
        ("X-Repolib-Name", name),
        ("Types", args.get("types") or "deb"),
        ("URIs", args.get("uris")),
        ("Suites", args.get("suites")),
        ("Components", args.get("components")),
        ("Architectures", args.get("architectures")),
        ("Enabled", args.get("enabled")),
        ("Trusted", args.get("trusted")),
        ("Allow-Insecure", args.get("allow_insecure")),
        ("Signed-By", args.get("signed_by")),
    ]
    lines = []
    for key, value in fields:
        if value is None:
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        value = str(value)
        if "\n" in value.strip():  # an inline key: continuation lines, blank ones as " ."
            value = "\n" + "\n".join(" " + (ln if ln.strip() else ".") for ln in value.strip().splitlines())
        lines.append("%s: %s" % (key, value) if not value.startswith("\n") else "%s:%s" % (key, value))
    content = "\n".join(lines) + "\n"
    if before == content:
        return {"changed": False, "dest": path, "repo": content}
    if not ctx["check"]:
        atomic_write(path, content.encode())
        os.chmod(path, parse_mode(args.get("mode")) or 0o644)
    return {"changed": True, "dest": path, "repo": content, "diff": [text_diff(path, before or "", content)]}
