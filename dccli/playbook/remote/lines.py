# Playbook modules that edit lines of a file in place: lineinfile and blockinfile (Ansible's algorithms).
import re


@module("lineinfile")
def m_lineinfile(args, ctx):
    dest = args.get("path") or args.get("dest") or args.get("name")
    if not dest:
        raise ModuleFailed("missing required arguments: path")
    check, state = ctx["check"], args.get("state") or "present"
    regexp, search, line = args.get("regexp"), args.get("search_string"), args.get("line")
    diff = {
        "before": "",
        "after": "",
        "before_header": "%s (content)" % dest,
        "after_header": "%s (content)" % dest,
    }
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
    diff = {
        "before": (original or b"").decode("utf-8", "replace"),
        "before_header": "%s (content)" % path,
        "after_header": "%s (content)" % path,
    }
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
        blocklines = [marker0, *block.splitlines(True), marker1]
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
        lines[n0 : n1 + 1] = []
    else:
        lines[n1 : n0 + 1] = []
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
