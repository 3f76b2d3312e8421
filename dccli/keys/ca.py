"""CA mode: dccli's user CA, short-lived user certificates, a KRL, and sshd told to trust them.

Files on the control node: $DCCLI_HOME/keys/ca/{user_ca, user_ca.pub, revoked.krl}; serials and
revocations in the state DB (key_certs). On each host: /etc/ssh/dccli_revoked_keys (the KRL, written
FIRST: sshd refuses every login while RevokedKeys names a missing file), /etc/ssh/dccli_user_ca.pub,
then dccli's block in /etc/ssh/sshd_config (validated with `sshd -t -f` before it replaces the old
file), then an sshd reload. The rotation's fresh login offers only the new certificate, so it proves
the reload took effect before any old key is removed.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from dccli.errors import DccliError, UsageError
from dccli.keys import authfile, sshdconf
from dccli.keys.store import KeyPair, KeyStore

HOST_CA = "/etc/ssh/dccli_user_ca.pub"
HOST_KRL = "/etc/ssh/dccli_revoked_keys"
SSHD_CONFIG = "/etc/ssh/sshd_config"
RELOAD = r"""
sshd=$(command -v sshd || echo /usr/sbin/sshd)
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ssh 2>/dev/null; then
  exec systemctl reload ssh
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet sshd 2>/dev/null; then
  exec systemctl reload sshd
fi
pidfile=$("$sshd" -T 2>/dev/null | awk '$1 == "pidfile" {print $2}')
pid=$(cat "${pidfile:-/run/sshd.pid}" 2>/dev/null) || { echo "no sshd pid file" >&2; exit 1; }
kill -HUP "$pid"
"""


class CAError(DccliError):
    pass


def _keygen(argv: list[str], what: str) -> str:
    try:
        proc = subprocess.run(
            ["ssh-keygen", *argv], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise CAError("ssh-keygen not found on the control node (install openssh-client)") from None
    if proc.returncode != 0:
        raise CAError(f"{what}: ssh-keygen: {proc.stderr.strip()}")
    return proc.stdout + proc.stderr


class CertAuthority:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = home / "keys" / "ca"
        self.key = self.dir / "user_ca"
        self.pub = self.dir / "user_ca.pub"
        self.krl = self.dir / "revoked.krl"

    def exists(self) -> bool:
        return self.key.is_file() and self.pub.is_file()

    def public_blob(self) -> bytes:
        import base64

        return base64.b64decode(self.pub.read_text().split()[1])

    def init(self) -> str:
        """Create the CA (ed25519, 0600) and an empty KRL; returns the CA's fingerprint."""
        if self.exists():
            raise UsageError(f"{self.key}: a user CA already exists")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _keygen(
            ["-q", "-t", "ed25519", "-N", "", "-C", "dccli-user-ca", "-f", str(self.key)], "creating the CA"
        )
        os.chmod(self.key, 0o600)
        self.ensure_krl()
        from dccli.transport.hostkeys import fingerprint

        return fingerprint(self.public_blob())

    def require(self) -> None:
        if not self.exists():
            raise UsageError("no user CA: run `dccli keys ca init` first")

    def ensure_krl(self) -> bytes:
        if not self.krl.is_file():
            _keygen(["-k", "-f", str(self.krl)], "creating an empty KRL")
        return self.krl.read_bytes()

    def _db(self):
        from dccli.keys.audit import open_db

        return open_db(self.home)

    def sign(self, pub_path: Path, principals: Sequence[str], validity: str, key_id: str) -> int:
        """Certificate for pub_path (written beside it as -cert.pub); returns its serial."""
        self.require()
        from dccli.keys.store import read_public
        from dccli.transport.hostkeys import fingerprint

        with closing(self._db()) as db:
            db.execute("BEGIN IMMEDIATE")
            serial = (db.execute("SELECT COALESCE(MAX(serial), 0) FROM key_certs").fetchone()[0] or 0) + 1
            private = Path(str(pub_path).removesuffix(".pub"))
            public = read_public(private)
            fp = fingerprint(public[1]) if public else ""
            db.execute(
                "INSERT INTO key_certs (serial, key_fingerprint, key_id, principals, issued_at)"
                " VALUES (?,?,?,?,?)",
                (serial, fp, key_id, ",".join(principals), time.time()),
            )
            try:
                _keygen(
                    [
                        "-q",
                        "-s",
                        str(self.key),
                        "-I",
                        key_id,
                        "-n",
                        ",".join(principals),
                        "-V",
                        validity,
                        "-z",
                        str(serial),
                        str(pub_path),
                    ],
                    f"signing {pub_path.name}",
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return serial

    def certs(self) -> list[dict]:
        with closing(self._db()) as db:
            return [dict(r) for r in db.execute("SELECT * FROM key_certs ORDER BY serial")]

    def revoke(self, serials: Sequence[int]) -> bytes:
        """Add serials to the KRL (locally); returns the new KRL to distribute."""
        self.require()
        self.ensure_krl()
        spec = self.dir / "revoke.spec"
        spec.write_text("".join(f"serial: {s}\n" for s in serials))
        _keygen(["-k", "-u", "-s", str(self.pub), "-f", str(self.krl), str(spec)], "updating the KRL")
        spec.unlink()
        with closing(self._db()) as db:
            db.executemany(
                "UPDATE key_certs SET revoked_at = ? WHERE serial = ?", [(time.time(), s) for s in serials]
            )
        return self.krl.read_bytes()


def cert_serial(cert_path: Path) -> int | None:
    try:
        out = _keygen(["-L", "-f", str(cert_path)], "reading a certificate")
    except CAError:
        return None
    for line in out.splitlines():
        if line.strip().startswith("Serial:"):
            return int(line.split()[-1])
    return None


def _wait_listening(address: str, port: int, timeout: float = 10.0) -> None:
    """After a reload sshd re-executes itself: wait for its banner before the proving login."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)


def install_on_host(conn, endpoint, ca_pub: bytes, krl: bytes) -> None:
    """KRL first, CA key next, then sshd_config (validated), then a reload; the caller proves it."""
    with authfile.watchdog(conn, what="writing the KRL and the CA key"):
        conn.put_bytes(krl, HOST_KRL, 0o644)  # first: a RevokedKeys naming a missing file refuses everyone
        conn.put_bytes(ca_pub, HOST_CA, 0o644)
    snap = authfile.read(conn, SSHD_CONFIG)
    try:
        text = sshdconf.ensure(
            snap.content.decode("utf-8", "surrogateescape"),
            {"TrustedUserCAKeys": HOST_CA, "RevokedKeys": HOST_KRL},
        )
    except sshdconf.ConflictError as exc:
        raise CAError(f"{conn.name}: {exc}") from None
    new = text.encode("utf-8", "surrogateescape")
    if new == snap.content:
        return

    def validate(tmp: str) -> None:
        out = conn.exec(f"$(command -v sshd || echo /usr/sbin/sshd) -t -f {shlex.quote(tmp)}", timeout=30)
        if out.exit_code != 0:
            raise CAError(
                f"{conn.name}: sshd -t rejects the new sshd_config: "
                f"{out.stderr.decode('utf-8', 'replace').strip()[:300]}"
            )

    authfile.write(conn, snap, new, validate=validate, prefix=".sshd_config")
    out = conn.exec(RELOAD, timeout=30)
    if out.exit_code != 0:
        raise CAError(
            f"{conn.name}: sshd reload failed: {out.stderr.decode('utf-8', 'replace').strip()[:300]}"
        )
    if not endpoint.jump:
        _wait_listening(endpoint.address, endpoint.port)


def distribute_krl(hosts: Sequence, pool, krl: bytes, forks: int = 64):
    from dccli.executor import OK, fan_out

    def one(host):
        conn = pool.get(host)
        with authfile.watchdog(conn, what="writing the KRL"):
            conn.put_bytes(krl, HOST_KRL, 0o644)  # sshd reads RevokedKeys at each login: no reload
        return OK, None

    return fan_out(hosts, one, forks=forks)


def rotate_ca(
    inventory,
    hosts: Sequence,
    pool,
    *,
    home: Path,
    kind: str = "ed25519",
    validity: str = "+12h",
    principals: str | None = None,
    forks: int = 64,
    on_step=None,
):
    """A new key pair with a certificate; hosts trust the CA; then the usual fresh login and removals."""
    from dccli.keys.rotate import rotate

    ca = CertAuthority(home)
    ca.require()
    names = (
        sorted({pool.endpoint(h).user for h in hosts})
        if principals is None
        else [p.strip() for p in principals.split(",") if p.strip()]
    )
    store = KeyStore(home)
    with store.lock():
        target = store.generate(kind)
        try:
            serial = ca.sign(target.pub_path, names, validity, key_id=target.name)
        except CAError as exc:
            store.archive(target)  # never signed, never used: out of the way of the next rotation
            raise UsageError(f"--validity {validity} / --principals {','.join(names)}: {exc}") from None
    ca_pub, krl = ca.pub.read_bytes(), ca.ensure_krl()

    def install(conn, endpoint) -> None:
        install_on_host(conn, endpoint, ca_pub, krl)

    report, group = rotate(
        inventory,
        hosts,
        pool,
        home=home,
        forks=forks,
        on_step=on_step,
        target=target,
        extra_steps=install,
        authorize_plain=False,
        audit_kind="ca",
    )
    report.key["serial"] = serial
    report.key["principals"] = names
    return report, group


__all__ = ["CertAuthority", "KeyPair", "rotate_ca"]
