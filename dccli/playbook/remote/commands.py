# Playbook modules that run programs: command, shell, wait_for, sysctl, service, and reboot's host side.
import datetime
import glob
import shlex
import socket


@module("command")
def m_command(args, ctx):
    return run_command(args, ctx, shell=False)


@module("shell")
def m_shell(args, ctx):
    return run_command(args, ctx, shell=True)


def run_command(args, ctx, shell):
    raw, argv = args.get("cmd") or args.get("_raw_params"), args.get("argv")
    creates, removes, chdir = args.get("creates"), args.get("removes"), args.get("chdir")
    if not raw and not argv:
        raise ModuleFailed("no command given", rc=256)
    cmd = raw if shell else argv if argv else shlex.split(raw)
    res = {
        "changed": False,
        "cmd": cmd,
        "rc": None,
        "stdout": "",
        "stderr": "",
        "msg": "",
        "start": None,
        "end": None,
        "delta": None,
    }
    if chdir:
        try:
            os.chdir(os.path.expanduser(chdir))
        except OSError as exc:
            raise ModuleFailed("Unable to change directory before execution.", error=str(exc)) from None
    shoulda = "Would" if ctx["check"] else "Did"
    if creates and glob.glob(os.path.expanduser(creates)):
        res.update(
            msg="%s not run command since '%s' exists" % (shoulda, creates),
            rc=0,
            stdout="skipped, since %s exists" % creates,
        )
    elif removes and not glob.glob(os.path.expanduser(removes)):
        res.update(
            msg="%s not run command since '%s' does not exist" % (shoulda, removes),
            rc=0,
            stdout="skipped, since %s does not exist" % removes,
        )
    if res["msg"]:
        os.chdir("/")
        return finish_lines(res)
    res["changed"] = True
    if ctx["check"]:
        res.update(rc=0, msg="Command would have run if not in check mode")
        if creates is None and removes is None:
            res.update(skipped=True, changed=False)
        return finish_lines(res)
    start = datetime.datetime.now()
    rc, out, err = run_env(
        cmd,
        ctx["env"],
        stdin=args.get("stdin"),
        shell=shell,
        executable=args.get("executable") if shell else None,
    )
    end = datetime.datetime.now()
    os.chdir("/")
    res.update(
        rc=rc,
        stdout=out.rstrip("\r\n"),
        stderr=err.rstrip("\r\n"),
        start=str(start),
        end=str(end),
        delta=str(end - start),
    )
    if rc != 0:
        res.update(failed=True, msg="non-zero return code")
    return finish_lines(res)


def finish_lines(res):
    res["stdout_lines"] = (res.get("stdout") or "").splitlines()
    res["stderr_lines"] = (res.get("stderr") or "").splitlines()
    return res


@module("wait_for")
def m_wait_for(args, ctx):
    timeout = float(args.get("timeout", 300))
    delay = float(args.get("delay", 0))
    sleep = float(args.get("sleep", 1))
    state = args.get("state") or "started"
    path, port = args.get("path"), args.get("port")
    host = args.get("host") or "127.0.0.1"
    search = args.get("search_regex")
    start = time.time()
    if ctx["check"]:
        return {"changed": False, "elapsed": 0, "msg": "skipped in check mode"}
    time.sleep(delay)
    while True:
        if path:
            present = os.path.exists(path)
            if present and search:
                import re

                present = re.search(search, read_text(path) or "") is not None
            done = present if state in ("present", "started") else not present
        elif port:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                up = True
            except OSError:
                up = False
            done = up if state in ("started", "present") else not up
        else:
            done = time.time() - start >= timeout - delay
            if done:
                return {"changed": False, "elapsed": int(time.time() - start)}
        if done:
            return {
                "changed": False,
                "elapsed": int(time.time() - start),
                "path": path,
                "port": port,
                "state": state,
            }
        if time.time() - start >= timeout:
            what = path or "%s:%s" % (host, port)
            raise ModuleFailed("Timeout when waiting for %s" % what, elapsed=int(time.time() - start))
        time.sleep(sleep)


@module("sysctl")
def m_sysctl(args, ctx):
    name, value = args.get("name"), args.get("value")
    state = args.get("state") or "present"
    conf = args.get("sysctl_file") or "/etc/sysctl.conf"
    if not name:
        raise ModuleFailed("missing required arguments: name")
    if state == "present" and value is None:
        raise ModuleFailed("value is required with state=present")
    value = str(value).strip() if value is not None else None
    if isinstance(args.get("value"), bool):
        value = "1" if args["value"] else "0"
    original = read_bytes(conf).decode("utf-8", "replace") if os.path.exists(conf) else ""
    out_lines, found = [], False
    for raw in original.splitlines(True):
        key = raw.split("=", 1)[0].strip() if "=" in raw and not raw.lstrip().startswith(("#", ";")) else None
        if key == name:
            if found or state == "absent":
                continue
            found = True
            out_lines.append("%s=%s\n" % (name, value))
        else:
            out_lines.append(raw)
    if state == "present" and not found:
        if out_lines and not out_lines[-1].endswith("\n"):
            out_lines[-1] += "\n"
        out_lines.append("%s=%s\n" % (name, value))
    new = "".join(out_lines)
    changed = new != original
    res = {"name": name, "value": value, "sysctl_file": conf, "diff": [text_diff(conf, original, new)]}
    proc_path = "/proc/sys/" + name.replace(".", "/")
    current = (read_text(proc_path) or "").strip() if os.path.exists(proc_path) else None
    live_differs = (
        state == "present"
        and args.get("sysctl_set", False)
        and " ".join((current or "").split()) != " ".join(value.split())
    )
    if ctx["check"]:
        res["changed"] = changed or bool(live_differs)
        return res
    if changed:
        parent = os.path.dirname(conf)
        if parent and not os.path.isdir(parent):
            os.makedirs(parent)
        atomic_write(conf, new.encode())
    res["changed"] = changed
    if state == "present" and args.get("sysctl_set", False) and live_differs:
        try:
            with open(proc_path, "w") as handle:
                handle.write(value)
            res["changed"] = True
        except OSError as exc:
            raise ModuleFailed(
                "setting %s=%s failed: %s (%s is read-only on this host?)"
                % (name, value, exc.strerror or exc, proc_path),
                **res,
            ) from None
    elif changed and args.get("reload", True) and state == "present" and not args.get("sysctl_set", False):
        rc, out, err = run_env(["sysctl", "-p", conf], ctx["env"])
        if rc != 0:
            raise ModuleFailed("Failed to reload sysctl: %s" % (err.strip() or out.strip()), rc=rc, **res)
    return res


@module("service")
def m_service(args, ctx):
    name = args.get("name")
    state, enabled = args.get("state"), args.get("enabled")
    if not name:
        raise ModuleFailed("missing required arguments: name")
    script = "/etc/init.d/%s" % name
    systemctl = which("systemctl") if os.path.isdir("/run/systemd/system") else None
    res = {"name": name, "changed": False}
    if systemctl:
        status = lambda: run_env([systemctl, "is-active", name], ctx["env"])[0] == 0  # noqa: E731
        start, stop = [systemctl, "start", name], [systemctl, "stop", name]
        restart, reload_ = [systemctl, "restart", name], [systemctl, "reload", name]
    elif os.path.exists(script):
        status = lambda: run_env([script, "status"], ctx["env"])[0] == 0  # noqa: E731
        start, stop, restart, reload_ = (
            [script, "start"],
            [script, "stop"],
            [script, "restart"],
            [script, "reload"],
        )
    else:
        raise ModuleFailed(
            "Could not find the requested service %s: no systemd on this host and no %s" % (name, script)
        )
    running = status()
    res["status"] = {"ActiveState": "active" if running else "inactive"}
    action = None
    if state == "started" and not running:
        action = start
    elif state == "stopped" and running:
        action = stop
    elif state == "restarted":
        action = restart if running else start
    elif state == "reloaded":
        action = reload_ if running else start
    if enabled is not None:
        if systemctl:
            is_enabled = run_env([systemctl, "is-enabled", name], ctx["env"])[0] == 0
            if bool(enabled) != is_enabled:
                res["changed"] = True
                if not ctx["check"]:
                    rc, out, err = run_env([systemctl, "enable" if enabled else "disable", name], ctx["env"])
                    if rc != 0:
                        raise ModuleFailed(
                            "Unable to %s service %s: %s"
                            % ("enable" if enabled else "disable", name, err.strip()),
                            **res,
                        )
        else:
            links = glob.glob("/etc/rc[2345].d/S??%s" % name)
            if bool(enabled) != bool(links):
                res["changed"] = True
                tool = which("update-rc.d")
                if not ctx["check"] and tool:
                    run_env([tool, name, "defaults" if enabled else "remove"], ctx["env"])
        res["enabled"] = bool(enabled)
    if action:
        res["changed"] = True
        if not ctx["check"]:
            rc, out, err = run_env(action, ctx["env"], timeout=120)
            if rc != 0:
                raise ModuleFailed(
                    "Unable to %s service %s: %s"
                    % (action[-1] if not systemctl else action[1], name, (err or out).strip()),
                    rc=rc,
                    **res,
                )
    res["state"] = state or ("started" if running else "stopped")
    return res


@module("boot_id")
def m_boot_id(args, ctx):
    return {"changed": False, "boot_id": (read_text("/proc/sys/kernel/random/boot_id") or "").strip()}


@module("reboot_trigger")
def m_reboot_trigger(args, ctx):
    # Detach the reboot command so this session can answer before the host goes down.
    cmd = args.get("reboot_command") or "shutdown -r now"
    subprocess.Popen(
        ["/bin/sh", "-c", "sleep 1; " + cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return {"changed": True}
