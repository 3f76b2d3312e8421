"""dccli keys: key status, rotation without lockouts, a user CA, host key rotation (docs/keys.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from dccli.cli.common import ForksOpt, InventoryOpt, JsonOpt, LimitOpt, TimeoutOpt, handle_errors

keys_app = typer.Typer(
    help="SSH keys: status, rotation without lockouts, user CA, host keys.", no_args_is_help=True
)
ca_app = typer.Typer(help="dccli's user certificate authority.", no_args_is_help=True)
keys_app.add_typer(ca_app, name="ca")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def _ssh_hosts(inv, limit):
    from dccli.cli.targets import select_hosts
    from dccli.errors import UsageError

    hosts = [h for h in select_hosts(inv, limit) if h.connection != "local"]
    if not hosts:
        raise UsageError("no SSH host selected (a local connection has no authorized_keys to manage)")
    return hosts


@keys_app.command("rotate")
@handle_errors
def rotate_cmd(
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    key_type: str = typer.Option("ed25519", "--type", help="Key type of a new pair: ed25519, ecdsa, rsa."),
    new_key: bool = typer.Option(
        False,
        "--new-key",
        help="Generate a new pair even if an earlier rotation to the current one is unfinished.",
    ),
    ca: bool = typer.Option(
        False, "--ca", help="CA mode: hosts trust dccli's user CA; log in with a certificate."
    ),
    validity: str = typer.Option("+12h", "--validity", help="CA mode: certificate validity (ssh-keygen -V)."),
    principals: str | None = typer.Option(
        None, "--principals", help="CA mode: comma-separated principals (default: the inventory's users)."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """New key pair, then per host: add it, log in afresh with it, only then remove the old key."""
    import time

    from dccli import paths
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool, remember
    from dccli.errors import UsageError
    from dccli.keys.store import KEY_TYPES
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.output.hostlines import summary
    from dccli.output.keys import rotation_lines

    env = Env.from_process()
    if key_type not in KEY_TYPES:
        raise UsageError(f"--type {key_type}: expected one of {', '.join(KEY_TYPES)}")
    inv = load_inventory(inventory)
    hosts = _ssh_hosts(inv, limit)
    started = time.time()
    home = paths.ensure_home()
    with make_pool(inv, timeout) as pool:
        if ca:
            from dccli.keys.ca import rotate_ca

            report, group = rotate_ca(
                inv,
                hosts,
                pool,
                home=home,
                kind=key_type,
                validity=validity,
                principals=principals,
                forks=forks,
            )
        else:
            from dccli.keys.rotate import rotate

            report, group = rotate(inv, hosts, pool, home=home, kind=key_type, new_key=new_key, forks=forks)
    if json_out:
        env.out(jsonout.document(rotation=report.to_dict()))
    else:
        for line in rotation_lines(report):
            env.out(line)
    code = group.exit_code()
    if code != 0 or env.stderr_isatty:
        for line in summary(group):
            env.err(line)
    remember(inv, "keys-rotate", "keys rotate", started, group)
    raise typer.Exit(int(code))


@keys_app.command("status")
@handle_errors
def status_cmd(
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Per host: dccli's keys in authorized_keys, login key age, last rotation, host key, CA trust."""
    from dccli import paths
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.keys.status import gather
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.output.hostlines import summary
    from dccli.output.keys import status_lines

    env = Env.from_process()
    inv = load_inventory(inventory)
    hosts = _ssh_hosts(inv, limit)
    with make_pool(inv, timeout) as pool:
        group = gather(inv, hosts, pool, home=paths.ensure_home(), forks=forks)
    rows = [o.value for o in group.outcomes if o.value is not None]
    if json_out:
        env.out(jsonout.document(hosts=[r.to_dict() for r in rows]))
    else:
        for line in status_lines(rows):
            env.out(line)
    code = group.exit_code()
    if code != 0:
        for line in summary(group):
            env.err(line)
    raise typer.Exit(int(code))


@keys_app.command("host-rotate")
@handle_errors
def host_rotate_cmd(
    host: str = typer.Argument(..., help="The inventory host whose sshd host keys are regenerated."),
    inventory: Path | None = InventoryOpt,
    timeout: float | None = TimeoutOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Regenerate a host's sshd keys and record the new fingerprints in known_hosts in the same step."""
    import time

    from dccli import paths
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.errors import DccliError, UsageError
    from dccli.executor import classify
    from dccli.keys.audit import AuditRow, record
    from dccli.keys.hostkeys_rotate import host_rotate
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.transport.identities import endpoint_id

    env = Env.from_process()
    inv = load_inventory(inventory)
    try:
        target = inv.host(host)
    except KeyError:
        raise UsageError(f"no host {host!r} in the inventory") from None
    home = paths.ensure_home()
    with make_pool(inv, timeout) as pool:
        ep = pool.endpoint(target)
        eid = endpoint_id(ep.user, ep.address, ep.port)
        t0 = time.monotonic()
        try:
            result = host_rotate(target, pool, inv)
        except DccliError as exc:
            record(
                home,
                inv.cluster,
                [
                    AuditRow(
                        host,
                        eid,
                        "host-rotate",
                        classify(exc),
                        error=str(exc),
                        duration_s=time.monotonic() - t0,
                    )
                ],
            )
            raise
    record(
        home,
        inv.cluster,
        [
            AuditRow(
                host,
                eid,
                "host-rotate",
                "ok",
                result["old"]["fingerprint"],
                ",".join(result["recorded"].values()),
                "done",
                None,
                result["duration_s"],
            )
        ],
    )
    if json_out:
        env.out(jsonout.document(host_rotation=result))
    else:
        env.out(
            f"{host}: host key {result['old']['fingerprint']} -> {result['new']['fingerprint']} "
            f"({result['new']['type']})"
        )
        for path in result["known_hosts_updated"]:
            env.out(f"  recorded in {path}")


@keys_app.command("log")
@handle_errors
def log_cmd(
    inventory: Path | None = InventoryOpt,
    host: str | None = typer.Option(None, "--host", help="Only this host."),
    limit_rows: int = typer.Option(50, "-n", help="Rows, newest first."),
    json_out: bool = JsonOpt,
) -> None:
    """The audit trail: every rotation (when, host, old and new fingerprint, outcome)."""
    from contextlib import closing

    from dccli.cli.common import load_inventory
    from dccli.keys.audit import history, open_db
    from dccli.output import jsonout
    from dccli.output.console import Env
    from dccli.output.keys import short, when

    env = Env.from_process()
    inv = load_inventory(inventory)
    with closing(open_db(None)) as db:
        rows = history(db, inv.cluster, host, limit_rows)
    if json_out:
        env.out(jsonout.document(rotations=rows))
        return
    for r in rows:
        env.out(
            f"{when(r['at'])}  {r['host']:<12} {r['kind']:<11} {r['outcome']:<11} "
            f"{short(r['old_fingerprint'])} -> {short(r['new_fingerprint'])}"
            + (f"  [{r['step']}] {r['error']}" if r["error"] else "")
        )


@ca_app.command("init")
@handle_errors
def ca_init_cmd() -> None:
    """Create dccli's user CA (ed25519, 0600) and an empty KRL under $DCCLI_HOME/keys/ca."""
    from dccli import paths
    from dccli.keys.ca import CertAuthority
    from dccli.output.console import Env

    ca = CertAuthority(paths.ensure_home())
    fp = ca.init()
    Env.from_process().out(f"user CA {fp}: {ca.key}")


@ca_app.command("renew")
@handle_errors
def ca_renew_cmd(
    inventory: Path | None = InventoryOpt,
    validity: str = typer.Option("+12h", "--validity", help="Certificate validity (ssh-keygen -V)."),
    principals: str | None = typer.Option(None, "--principals", help="Comma-separated (default: as before)."),
) -> None:
    """A fresh certificate for the current key (no host is touched: hosts trust the CA)."""
    from dccli import paths
    from dccli.errors import UsageError
    from dccli.keys.ca import CertAuthority
    from dccli.keys.store import KeyStore
    from dccli.output.console import Env

    home = paths.ensure_home()
    ca = CertAuthority(home)
    pair = KeyStore(home).current()
    if pair is None:
        raise UsageError("no dccli key yet: run `dccli keys rotate --ca` first")
    previous = [c for c in ca.certs() if c["key_id"] == pair.name]
    names = [
        p.strip() for p in (principals or (previous[-1]["principals"] if previous else "root")).split(",")
    ]
    serial = ca.sign(pair.pub_path, names, validity, key_id=pair.name)
    Env.from_process().out(f"certificate serial {serial} for {pair.name} ({','.join(names)}, {validity})")


@ca_app.command("revoke")
@handle_errors
def ca_revoke_cmd(
    serial: list[int] = typer.Option(..., "--serial", help="Certificate serial to revoke (repeatable)."),
    inventory: Path | None = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    timeout: float | None = TimeoutOpt,
) -> None:
    """Add serials to the KRL and distribute it to the hosts (sshd reads it at every login)."""
    from dccli import paths
    from dccli.cli.common import load_inventory
    from dccli.cli.targets import make_pool
    from dccli.errors import UsageError
    from dccli.keys.ca import CertAuthority, cert_serial, distribute_krl
    from dccli.keys.store import KeyStore
    from dccli.output.console import Env
    from dccli.output.hostlines import summary

    env = Env.from_process()
    home = paths.ensure_home()
    ca = CertAuthority(home)
    pair = KeyStore(home).current()
    if pair is not None and pair.cert_path.is_file() and cert_serial(pair.cert_path) in serial:
        # the lockout rule: never revoke what dccli itself logs in with
        raise UsageError(
            f"serial {cert_serial(pair.cert_path)} is dccli's own current certificate: "
            "run `dccli keys ca renew` first"
        )
    krl = ca.revoke(serial)
    inv = load_inventory(inventory)
    hosts = _ssh_hosts(inv, limit)
    with make_pool(inv, timeout) as pool:
        group = distribute_krl(hosts, pool, krl, forks=forks)
    for line in summary(group, noun="hosts got the KRL"):
        env.err(line)
    raise typer.Exit(int(group.exit_code()))
