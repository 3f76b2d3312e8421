# Playbook modules that manage files: file, copy (content or pushed src), lineinfile, blockinfile, stat.
# Each ports the decision logic of the Ansible module of the same name (same changed/ok verdicts).
import re


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
        res.update(state=state or file_state(path), mode="%04o" % stat_mod.S_IMODE(st.st_mode), uid=st.st_uid,
                   gid=st.st_gid, size=st.st_size)
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
                    raise ModuleFailed("refusing to convert from directory to symlink for %s" % path, path=path)
                if prev in ("file", "hard") and not args.get("force"):
                    raise ModuleFailed("refusing to convert from file to symlink for %s" % path, path=path)
                absolute = src if os.path.isabs(src) else os.path.join(os.path.dirname(path), src)
                if not os.path.exists(absolute) and not args.get("force") and not check:
                    raise ModuleFailed("src file does not exist, use \"force=yes\" if you really want to create "
                                       "the link: %s" % absolute, path=path, src=src)
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
    raise ModuleFailed("value of state must be one of: absent, directory, file, hard, link, touch, got: %s" % state)


@module("copy")
def m_copy(args, ctx):
    dest = args.get("dest")
    if not dest:
        raise ModuleFailed("missing required arguments: dest")
    check = ctx["check"]
    data = b64(args.get("_data"))
    if data is None:
        raise ModuleFailed("src (or content) is required")
    if dest.endswith("/") or os.path.isdir(dest):
        if not args.get("_src_name"):
            raise ModuleFailed("can not use content with a dir as dest")
        dest = os.path.join(dest, args["_src_name"])
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
            res["diff"] = [text_diff(dest, before.decode("utf-8", "replace"), data.decode("utf-8", "replace"))]
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


@module("lineinfile")
def m_lineinfile(args, ctx):
    dest = args.get("path") or args.get("dest") or args.get("name")
    if not dest:
        raise ModuleFailed("missing required arguments: path")
    check, state = ctx["check"], args.get("state") or "present"
    regexp, search, line = args.get("regexp"), args.get("search_string"), args.get("line")
    diff = {"before": "", "after": "", "before_header": "%s (content)" % dest, "after_header": "%s (content)" % dest}
    exists = os.path.exists(dest)
    if state == "absent":
        if regexp is None and search is None and line is None:
            raise ModuleFailed("one of line, search_string, or regexp is required with state=absent")
        if not exists:
            return {"changed": False, "msg": "file not present"}
        lines = read_bytes(dest).splitlines(True)
        diff["before"] = b"".join(lines).decode("utf-8", "replace")
        bre = re.compile(regexp.encode()) if regexp is not None else None
        bline = (line or "").encode()
        kept = []
        found = 0
        for cur in lines:
            if bre is not None:
                hit = bre.search(cur)
            elif search is not None:
                hit = search.encode() in cur
            else:
                hit = bline == cur.rstrip(b"\r\n")
            if hit:
                found += 1
            else:
                kept.append(cur)
        changed = found > 0
        diff["after"] = b"".join(kept).decode("utf-8", "replace")
        res = {"found": found, "msg": "%d line(s) removed" % found if changed else ""}
        if changed and not check:
            if args.get("backup"):
                res["backup"] = backup_file(dest)
            atomic_write(dest, b"".join(kept))
        res["changed"] = set_attrs(dest, args, check) or changed
        res["diff"] = [diff]
        return res
    if line is None:
        raise ModuleFailed("line is required with state=present")
    insertafter, insertbefore = args.get("insertafter"), args.get("insertbefore")
    backrefs, firstmatch = bool(args.get("backrefs")), bool(args.get("firstmatch"))
    if not exists:
        if not args.get("create"):
            raise ModuleFailed("Destination %s does not exist !" % dest, rc=257)
        parent = os.path.dirname(dest)
        if parent and not os.path.exists(parent) and not check:
            os.makedirs(parent)
        lines = []
    else:
        lines = read_bytes(dest).splitlines(True)
    diff["before"] = b"".join(lines).decode("utf-8", "replace")
    bre_m = re.compile(regexp.encode()) if regexp is not None else None
    if insertafter not in (None, "BOF", "EOF"):
        bre_ins = re.compile(insertafter.encode())
    elif insertbefore not in (None, "BOF"):
        bre_ins = re.compile(insertbefore.encode())
    else:
        bre_ins = None
    index = [-1, -1]
    match = None
    exact = False
    bline = line.encode()
    if bre_m is not None:
        for n, cur in enumerate(lines):
            found = bre_m.search(cur)
            if found:
                index[0], match = n, found
                if firstmatch:
                    break
    if search is not None:
        for n, cur in enumerate(lines):
            if search.encode() in cur:
                index[0], match = n, True
                if firstmatch:
                    break
    if not match:
        for n, cur in enumerate(lines):
            if bline == cur.rstrip(b"\r\n"):
                index[0] = n
                exact = True
            elif bre_ins is not None and bre_ins.search(cur):
                if insertafter:
                    index[1] = n + 1
                    if firstmatch:
                        break
                if insertbefore:
                    index[1] = n
                    if firstmatch:
                        break
    msg, changed, sep = "", False, b"\n"
    if index[0] != -1:
        new = match.expand(bline) if backrefs and match is not True and match else bline
        if not new.endswith(sep):
            new += sep
        if (regexp, search, match) == (None, None, None) and not exact:
            if insertafter and insertafter != "EOF":
                if lines and lines[-1][-1:] not in (b"\n", b"\r"):
                    lines[-1] = lines[-1] + sep
                if len(lines) == index[1]:
                    if lines[index[1] - 1].rstrip(b"\r\n") != bline:
                        lines.append(bline + sep)
                        msg, changed = "line added", True
                elif lines[index[1]].rstrip(b"\r\n") != bline:
                    lines.insert(index[1], bline + sep)
                    msg, changed = "line added", True
            elif insertbefore and insertbefore != "BOF":
                if index[1] <= 0:
                    if lines[index[1]].rstrip(b"\r\n") != bline:
                        lines.insert(index[1], bline + sep)
                        msg, changed = "line added", True
                elif lines[index[1] - 1].rstrip(b"\r\n") != bline:
                    lines.insert(index[1], bline + sep)
                    msg, changed = "line added", True
        elif lines[index[0]] != new:
            lines[index[0]] = new
            msg, changed = "line replaced", True
    elif backrefs:
        pass  # a backrefs regexp that matches nothing leaves the file alone
    elif insertbefore == "BOF" or insertafter == "BOF":
        lines.insert(0, bline + sep)
        msg, changed = "line added", True
    elif insertafter == "EOF" or index[1] == -1:
        if lines and lines[-1][-1:] not in (b"\n", b"\r"):
            lines.append(sep)
        lines.append(bline + sep)
        msg, changed = "line added", True
    elif insertafter and index[1] != -1:
        if len(lines) == index[1]:
            if lines[index[1] - 1].rstrip(b"\r\n") != bline:
                lines.append(bline + sep)
                msg, changed = "line added", True
        elif bline != lines[index[1]].rstrip(b"\n\r"):
            lines.insert(index[1], bline + sep)
            msg, changed = "line added", True
    else:
        lines.insert(index[1], bline + sep)
        msg, changed = "line added", True
    diff["after"] = b"".join(lines).decode("utf-8", "replace")
    res = {"msg": msg, "backup": "", "diff": [diff]}
    if changed and not check:
        if args.get("backup") and exists:
            res["backup"] = backup_file(dest)
        atomic_write(dest, b"".join(lines))
    if check and not os.path.exists(dest):
        res["changed"] = changed
        return res
    if set_attrs(dest, args, check):
        res["msg"] = (msg + " and " if msg else "") + "ownership, perms or SE linux context changed"
        changed = True
    res["changed"] = changed
    return res


@module("blockinfile")
def m_blockinfile(args, ctx):
    path = args.get("path") or args.get("dest") or args.get("name")
    if not path:
        raise ModuleFailed("missing required arguments: path")
    check = ctx["check"]
    exists = os.path.exists(path)
    if exists and os.path.isdir(path):
        raise ModuleFailed("Path %s is a directory !" % path, rc=256)
    if not exists:
        if not args.get("create"):
            if (args.get("state") or "present") != "present":
                return {"changed": False, "msg": "File %s not present" % path}
            raise ModuleFailed("Path %s does not exist !" % path, rc=257)
        original, lines = None, []
    else:
        original = read_bytes(path)
        lines = original.splitlines(True)
    diff = {"before": (original or b"").decode("utf-8", "replace"), "before_header": "%s (content)" % path,
            "after_header": "%s (content)" % path}
    present = (args.get("state") or "present") == "present"
    if not present and not exists:
        return {"changed": False, "msg": "File %s not present" % path}
    insertafter, insertbefore = args.get("insertafter"), args.get("insertbefore")
    if insertbefore is None and insertafter is None:
        insertafter = "EOF"
    if insertafter not in (None, "EOF"):
        insertre = re.compile(insertafter.encode())
    elif insertbefore not in (None, "BOF"):
        insertre = re.compile(insertbefore.encode())
    else:
        insertre = None
    marker = (args.get("marker") or "# {mark} ANSIBLE MANAGED BLOCK").encode()
    marker0 = marker.replace(b"{mark}", (args.get("marker_begin") or "BEGIN").encode()) + b"\n"
    marker1 = marker.replace(b"{mark}", (args.get("marker_end") or "END").encode()) + b"\n"
    block = (args.get("block") or "").encode()
    if present and block:
        if not block.endswith(b"\n"):
            block += b"\n"
        blocklines = [marker0] + block.splitlines(True) + [marker1]
    else:
        blocklines = []
    n0 = n1 = None
    for i, cur in enumerate(lines):
        if cur == marker0:
            n0 = i
        if cur == marker1:
            n1 = i
    if None in (n0, n1):
        n0 = None
        if insertre is not None:
            for i, cur in enumerate(lines):
                if insertre.search(cur):
                    n0 = i
            if n0 is None:
                n0 = len(lines)
            elif insertafter is not None:
                n0 += 1
        elif insertbefore is not None:
            n0 = 0
        else:
            n0 = len(lines)
    elif n0 < n1:
        lines[n0:n1 + 1] = []
    else:
        lines[n1:n0 + 1] = []
        n0 = n1
    if n0 > 0 and not lines[n0 - 1].endswith(b"\n"):
        lines[n0 - 1] += b"\n"
    lines[n0:n0] = blocklines
    result = b"".join(lines)
    diff["after"] = result.decode("utf-8", "replace")
    if original == result:
        msg, changed = "", False
    elif original is None:
        msg, changed = "File created", True
    elif not blocklines:
        msg, changed = "Block removed", True
    else:
        msg, changed = "Block inserted", True
    res = {"msg": msg, "diff": [diff]}
    if changed and not check:
        if args.get("backup") and exists:
            res["backup_file"] = backup_file(path)
        atomic_write(path, result)
    if not (check and not exists) and set_attrs(path, args, check):
        msg = (msg + " and " if msg else "") + "ownership, perms or SE linux context changed"
        changed = True
    res.update(changed=changed, msg=msg)
    return res


@module("stat")
def m_stat(args, ctx):
    path = args.get("path")
    follow = bool(args.get("follow"))
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return {"changed": False, "stat": {"exists": False}}
    info = {"exists": True, "path": path, "mode": "%04o" % stat_mod.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid, "size": st.st_size, "mtime": st.st_mtime, "isdir": stat_mod.S_ISDIR(st.st_mode),
            "isreg": stat_mod.S_ISREG(st.st_mode), "islnk": stat_mod.S_ISLNK(st.st_mode)}
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
