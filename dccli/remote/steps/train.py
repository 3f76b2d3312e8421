# Step kinds of `dccli train` (runs in the helper's namespace: handler, run, which come from helper.py).
import errno as _errno


@handler("train_prepare")
def h_train_prepare(args):
    """Make the attempt's directories, find the interface towards the rendezvous host and, on the store
    host, the first candidate port that can be bound there right now."""
    out = {"hostname": os.uname().nodename, "ifname": None, "route": None, "port": None, "python": None}
    route = run(["ip", "-o", "route", "get", args["route_to"]], timeout=10)
    out["route"] = (route["stdout"] or route["stderr"]).strip()
    python = args.get("python") or "python3"
    out["python"] = python if os.path.isabs(python) and os.access(python, os.X_OK) else which(python)
    for path in (args["root"],):
        if not os.path.isdir(path):
            os.makedirs(path, 0o700)
    try:
        os.mkdir(args["dir"], 0o700)
    except OSError as exc:
        if exc.errno == _errno.EEXIST:
            raise RuntimeError(
                "%s already exists: an attempt's files are never reused" % args["dir"]
            ) from None
        raise
    os.mkdir(os.path.join(args["dir"], "done"), 0o700)
    import socket as _socket  # here, not at the top: every helper session would pay for its import

    for port in args.get("ports") or []:
        sock = _socket.socket(_socket.AF_INET6 if ":" in args["route_to"] else _socket.AF_INET)
        try:
            sock.bind((args["route_to"], port))  # no SO_REUSEADDR: a port in TIME_WAIT counts as busy
            out["port"] = port
            break
        except OSError:
            continue
        finally:
            sock.close()
    return out


@handler("train_scan")
def h_train_scan(args):
    """Files under a directory: relative path -> [size, mtime], for `train launch --sync`."""
    root = args["root"]
    found = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(base, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            found[os.path.relpath(full, root)] = [st.st_size, int(st.st_mtime)]
    return {"files": found, "exists": os.path.isdir(root)}
