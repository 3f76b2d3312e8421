"""`dccli keys host-rotate HOST`: new sshd host keys, recorded in known_hosts in the same step.

Over the connection verified against the OLD host key (a trusted channel): ssh-keygen writes new keys
beside the old ones (`<key>.dccli-new`), we read their public halves back, swap them in (old ones kept
as `<key>.dccli-old`), reload sshd, and at once replace the host's entries in dccli's known_hosts (and
in the inventory's known_hosts file, which would otherwise make OpenSSH users see a changed key). A
fresh, strictly checked connection then proves sshd serves exactly what was recorded. If the reload or
that proof fails, the old keys go back and the old entries with them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import time
from pathlib import Path

from dccli.errors import DccliError
from dccli.transport.hostkeys import OfferedKey, fingerprint

GENERATE = r"""
set -e
sshd=$(command -v sshd || echo /usr/sbin/sshd)
keys=$("$sshd" -T 2>/dev/null | awk '$1 == "hostkey" {print $2}')
[ -n "$keys" ] || keys=$(ls /etc/ssh/ssh_host_*_key)
for f in $keys; do
  [ -f "$f.pub" ] || continue
  case "$(cut -d' ' -f1 "$f.pub")" in
    ssh-ed25519) opts="-t ed25519" ;;
    ecdsa-sha2-nistp256) opts="-t ecdsa -b 256" ;;
    ecdsa-sha2-nistp384) opts="-t ecdsa -b 384" ;;
    ecdsa-sha2-nistp521) opts="-t ecdsa -b 521" ;;
    ssh-rsa) opts="-t rsa -b 3072" ;;
    *) continue ;;
  esac
  rm -f "$f.dccli-new" "$f.dccli-new.pub"
  ssh-keygen -q $opts -N '' -C "root@$(hostname)" -f "$f.dccli-new" </dev/null
  echo "KEY $f $(cat "$f.dccli-new.pub")"
done
"""


class HostRotateError(DccliError):
    pass


def _swap_script(files: list[str], back: bool = False) -> str:
    lines = ["set -e"]
    for f in files:
        q = shlex.quote(f)
        if back:
            lines.append(f"mv -f {q}.dccli-old {q}; mv -f {q}.dccli-old.pub {q}.pub")
        else:
            lines.append(f"cp -p {q} {q}.dccli-old; cp -p {q}.pub {q}.dccli-old.pub")
            lines.append(f"mv -f {q}.dccli-new {q}; mv -f {q}.dccli-new.pub {q}.pub")
    return "\n".join(lines) + "\n"


def rewrite_known_hosts(path: Path, names: list[str], new_lines: list[str]) -> bool:
    """Replace every line naming one of `names` in an OpenSSH known_hosts file; False if none did."""
    try:
        old = path.read_text().splitlines(keepends=True)
    except OSError:
        return False
    wanted = set(names)
    kept = [
        ln
        for ln in old
        if not (ln.split() and not ln.startswith("#") and wanted & set(ln.split()[0].split(",")))
    ]
    if len(kept) == len(old):
        return False
    tmp = path.with_name(f".{path.name}.dccli-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, os.stat(path).st_mode & 0o777)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(kept + [ln + "\n" for ln in new_lines])
    os.replace(tmp, path)
    return True


def _open_retrying(endpoint, pool, retry_s: float = 10.0):
    """A strictly checked connection; refused ones retried while sshd re-executes after the reload."""
    from dccli.errors import AuthError, TransportError
    from dccli.transport.ssh import SSHConnection

    deadline = time.monotonic() + retry_s
    while True:
        try:
            return SSHConnection.open(
                endpoint,
                hostkeys=pool.hostkeys,
                keys=pool.keys,
                options=pool.options,
                via=pool.jump_connection(endpoint),
            )
        except AuthError:
            raise
        except TransportError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def host_rotate(host, pool, inventory) -> dict:
    from dccli.keys.ca import RELOAD, _wait_listening

    t0 = time.monotonic()
    endpoint = pool.endpoint(host)
    names = endpoint.known_hosts_names
    conn = pool.get(host)
    old_server = conn.transport.get_remote_server_key()
    old = {"type": old_server.get_name(), "fingerprint": fingerprint(old_server.asbytes())}
    out = conn.exec(GENERATE, timeout=120)
    if out.exit_code != 0:
        raise HostRotateError(
            f"{host.name}: generating host keys failed: {out.stderr.decode(errors='replace')[-300:]}"
        )
    offered: dict[str, OfferedKey] = {}
    files: list[str] = []
    for line in out.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "KEY":
            files.append(parts[1])
            offered[parts[2]] = OfferedKey(parts[2], base64.b64decode(parts[3]))
    if not offered:
        raise HostRotateError(f"{host.name}: sshd has no host key dccli can regenerate")
    inv_known = (
        Path(os.path.expanduser(inventory.defaults.known_hosts)) if inventory.defaults.known_hosts else None
    )
    saved_dccli = pool.hostkeys.record_path.read_bytes() if pool.hostkeys.record_path.is_file() else None
    saved_inv = inv_known.read_bytes() if inv_known and inv_known.is_file() else None

    def swap(back: bool) -> None:
        res = conn.exec(_swap_script(files, back) + RELOAD, timeout=60)
        if res.exit_code != 0:
            raise HostRotateError(
                f"{host.name}: swapping host keys and reloading sshd failed: "
                f"{res.stderr.decode(errors='replace')[-300:]}"
            )
        if not endpoint.jump:
            _wait_listening(endpoint.address, endpoint.port)

    try:
        swap(back=False)
    except DccliError:
        # sshd may still serve the old keys from memory: put the old files back so a later restart agrees
        with contextlib.suppress(DccliError):
            swap(back=True)
        raise
    # The same step: the known_hosts entries follow the keys sshd now serves.
    pool.hostkeys.forget(names)
    for key in offered.values():
        pool.hostkeys.record(names, key)
    new_lines = [k.line_for(names) for k in offered.values()]
    updated = [str(pool.hostkeys.record_path)]
    if inv_known is not None and rewrite_known_hosts(inv_known, names, new_lines):
        updated.append(str(inv_known))
    try:
        fresh = _open_retrying(endpoint, pool)
        server = fresh.transport.get_remote_server_key()
        fresh.close()
    except DccliError as exc:
        # Put the old keys and entries back: the host must stay reachable with what we recorded.
        swap(back=True)
        if saved_dccli is not None:
            pool.hostkeys.record_path.write_bytes(saved_dccli)
        if saved_inv is not None and inv_known is not None:
            inv_known.write_bytes(saved_inv)
        pool.hostkeys.forget([])  # drop the cache
        raise HostRotateError(
            f"{host.name}: the new host keys did not verify ({exc}); old keys restored"
        ) from None
    conn.exec(
        "rm -f " + " ".join(shlex.quote(f + s) for f in files for s in (".dccli-old", ".dccli-old.pub"))
    )
    new = {"type": server.get_name(), "fingerprint": fingerprint(server.asbytes())}
    return {
        "host": host.name,
        "old": old,
        "new": new,
        "recorded": {k: v.fingerprint for k, v in offered.items()},
        "known_hosts_updated": updated,
        "duration_s": time.monotonic() - t0,
    }
