# Playbook modules that manage files: file, copy (content or pushed src), lineinfile, blockinfile, stat.
# Each ports the decision logic of the Ansible module of the same name (same changed/ok verdicts).


def file_state(path):
    if os.path.islink(path):
        return "link"
    if os.path.isdir(path):
        return "directory"
    if os.path.exists(path):
        return "hard" if os.stat(path).st_nlink > 1 else "file"
    return "absent"


def file_result(path, changed, state=None, **extra):
    res = dict(extra, changed=changed, path=path)
    try:
        st = os.lstat(path)
        res.update(
            state=state or file_state(path),
            mode="%04o" % stat_mod.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            size=st.st_size,
        )
    except OSError:
        res["state"] = "absent"
    return res


@module("file")
def m_file(args, ctx):
    path = args.get("path") or args.get("dest") or args.get("name")
    if not path:
        raise ModuleFailed("missing required arguments: path")
    path = os.path.expanduser(path)
    check = ctx["check"]
    prev = file_state(path)
    state = args.get("state") or ("file" if prev == "absent" else ("file" if prev == "hard" else prev))
    diff = {"before": {"path": path, "state": prev}, "after": {"path": path, "state": state}}
    if state == "absent":
        if prev == "absent":
            return {"changed": False, "path": path, "state": "absent"}
        if not check:
            if prev == "directory":
                shutil.rmtree(path)
            else:
                os.unlink(path)
        return {"changed": True, "path": path, "state": "absent", "diff": diff}
    if state == "file":
        if prev == "absent":
            raise ModuleFailed("file (%s) is absent, cannot continue" % path, path=path, state="absent")
        if prev == "directory":
            raise ModuleFailed("%s already exists as a directory" % path, path=path)
        changed = set_attrs(path, args, check, diff)
        return file_result(path, changed, diff=diff)
    if state == "directory":
        changed = False
        if prev == "absent":
            changed = True
            # Like Ansible: create each missing parent, each getting the requested attributes.
            parts, cur = [], path
            while cur and not os.path.exists(cur):
                parts.insert(0, cur)
                cur = os.path.dirname(cur.rstrip("/"))
            if check:
                return dict(file_result(path, True, state="directory"), diff=diff)
            for part in parts:
                os.mkdir(part)
                set_attrs(part, args, False)
        elif prev != "directory":
            raise ModuleFailed("there already exists a %s at %s" % (prev, path), path=path)
        changed = set_attrs(path, args, check, diff) or changed
        if args.get("recurse"):
            for root, dirs, names in os.walk(path):
                for n in dirs + names:
                    changed = set_attrs(os.path.join(root, n), args, check) or changed
        return file_result(path, changed, diff=diff)
    if state == "touch":
        if not check:
            if prev == "absent":
                open(path, "ab").close()
            else:
                os.utime(path, None)
            set_attrs(path, args, False)
        return file_result(path, True, state="file" if prev == "absent" else prev, diff=diff)
    if state in ("link", "hard"):
        src = args.get("src")
        if src is None:
            raise ModuleFailed("src is required for creating new %ss" % state)
        if state == "link":
            if prev == "link" and os.readlink(path) == src:
                changed = False
            else:
                if prev == "directory":
                    raise ModuleFailed(
                        "refusing to convert from directory to symlink for %s" % path, path=path
                    )
                if prev in ("file", "hard") and not args.get("force"):
                    raise ModuleFailed("refusing to convert from file to symlink for %s" % path, path=path)
                absolute = src if os.path.isabs(src) else os.path.join(os.path.dirname(path), src)
                if not os.path.exists(absolute) and not args.get("force") and not check:
                    raise ModuleFailed(
                        'src file does not exist, use "force=yes" if you really want to create '
                        "the link: %s" % absolute,
                        path=path,
                        src=src,
                    )
                changed = True
                if not check:
                    tmp = "%s.dccli-%d" % (path, os.getpid())
                    os.symlink(src, tmp)
                    os.rename(tmp, path)
        else:
            if prev != "absent" and os.path.exists(src) and os.path.samefile(src, path):
                changed = False
            else:
                changed = True
                if not check:
                    if prev != "absent":
                        os.unlink(path)
                    os.link(src, path)
        if not check or not changed:
            uid, gid = lookup_uid(args.get("owner")), lookup_gid(args.get("group"))
            if uid is not None or gid is not None:
                st = os.lstat(path)
                if (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid):
                    changed = True
                    if not check:
                        os.lchown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        return file_result(path, changed, state=state, src=src, diff=diff)
    raise ModuleFailed(
        "value of state must be one of: absent, directory, file, hard, link, touch, got: %s" % state
    )


@module("copy")
def m_copy(args, ctx):
    dest = args.get("dest")
    if not dest:
        raise ModuleFailed("missing required arguments: dest")
    check = ctx["check"]
    if dest.endswith("/") or os.path.isdir(dest):
        if not args.get("_src_name"):
            raise ModuleFailed("can not use content with a dir as dest")
        dest = os.path.join(dest, args["_src_name"])
    if args.get("_tmp_src"):
        return copy_uploaded(args, ctx, dest)
    if args.get("_data") is None and args.get("_sha1"):
        # A large file: the control node asks first and uploads over SFTP only when the content differs.
        same = os.path.isfile(dest) and sha1_file(dest) == args["_sha1"]
        if not same:
            return {"changed": False, "_need_data": True, "dest": dest}
        changed = set_attrs(dest, args, check)
        return dict(file_result(dest, changed), dest=dest, checksum=args["_sha1"])
    data = b64(args.get("_data"))
    if data is None:
        raise ModuleFailed("src (or content) is required")
    checksum = hashlib.sha1(data).hexdigest()
    exists = os.path.exists(dest)
    before = read_bytes(dest) if exists and os.path.isfile(dest) else b""
    changed = not exists or hashlib.sha1(before).hexdigest() != checksum
    if exists and not args.get("force", True):
        changed = False
    res = {"dest": dest, "checksum": checksum, "md5sum": hashlib.md5(data).hexdigest(), "size": len(data)}
    if changed:
        parent = os.path.dirname(dest)
        if parent and not os.path.isdir(parent):
            raise ModuleFailed("Destination directory %s does not exist" % parent, checksum=checksum)
        if ctx["diff"]:
            res["diff"] = [
                text_diff(dest, before.decode("utf-8", "replace"), data.decode("utf-8", "replace"))
            ]
        if not check:
            if exists and args.get("backup"):
                res["backup_file"] = backup_file(dest)
            atomic_write(dest, data)
    if os.path.exists(dest):
        changed = set_attrs(dest, args, check) or changed
    elif check and args.get("mode") is not None:
        pass
    res.update(file_result(dest, changed) if os.path.exists(dest) else {"changed": changed})
    res["dest"] = dest
    return res


def copy_uploaded(args, ctx, dest):
    """The content was uploaded next to dest (same filesystem): check it, then rename it into place."""
    tmp = args["_tmp_src"]
    try:
        checksum = sha1_file(tmp)
        if checksum != args.get("_sha1"):
            raise ModuleFailed("uploaded file %s is corrupt (sha1 %s)" % (tmp, checksum))
        res = {"dest": dest, "checksum": checksum, "size": os.path.getsize(tmp)}
        if ctx["check"]:
            res["changed"] = True
            return res
        if os.path.exists(dest):
            if args.get("backup"):
                res["backup_file"] = backup_file(dest)
            st = os.stat(dest)
            os.chmod(tmp, stat_mod.S_IMODE(st.st_mode))
            os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, 0o666 & ~current_umask())
        os.rename(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    set_attrs(dest, args, False)
    res.update(file_result(dest, True))
    res["dest"] = dest
    return res


@module("stat")
def m_stat(args, ctx):
    path = args.get("path")
    follow = bool(args.get("follow"))
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return {"changed": False, "stat": {"exists": False}}
    info = {
        "exists": True,
        "path": path,
        "mode": "%04o" % stat_mod.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
        "mtime": st.st_mtime,
        "isdir": stat_mod.S_ISDIR(st.st_mode),
        "isreg": stat_mod.S_ISREG(st.st_mode),
        "islnk": stat_mod.S_ISLNK(st.st_mode),
    }
    if info["islnk"]:
        info["lnk_source"] = os.path.realpath(path)
        info["lnk_target"] = os.readlink(path)
    if info["isreg"] and args.get("get_checksum", True):
        info["checksum"] = sha1_file(path)
    try:
        info["pw_name"] = pwd.getpwuid(st.st_uid).pw_name
        info["gr_name"] = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        pass
    return {"changed": False, "stat": info}
