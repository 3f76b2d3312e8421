# Step kinds every capability may use. Runs in the helper's namespace (see steps/__init__.py).


@handler("stat")
def h_stat(args):
    out = {}
    for path in args["paths"]:
        try:
            st = os.lstat(path)
            out[path] = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "size": st.st_size,
                         "mtime": st.st_mtime}
        except OSError:
            out[path] = None
    return out
