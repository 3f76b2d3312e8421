"""`train launch --sync DIR`: the directory pushed to the same path on every node, only changed files.

A file is changed when its size or whole-second mtime differs (rsync's quick check); pushed files get
the local mtime, so the next launch skips them. Transfers use SFTP on the node's pooled connection.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SyncResult:
    pushed: int
    unchanged: int
    bytes: int


def local_files(root: Path) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
        for name in files:
            full = Path(base) / name
            if full.is_symlink() or not full.is_file():
                continue
            st = full.stat()
            found[str(full.relative_to(root))] = (st.st_size, int(st.st_mtime))
    return found


def changed(local: dict[str, tuple[int, int]], remote: dict[str, list[int]]) -> list[str]:
    """Relative paths whose size or mtime differ from the node's copy (pure: unit-tested)."""
    return sorted(p for p, (size, mtime) in local.items() if tuple(remote.get(p) or ()) != (size, mtime))


def push(conn, root: Path, remote_files: dict[str, list[int]]) -> SyncResult:
    local = local_files(root)
    todo = changed(local, remote_files)
    sftp = conn.sftp()
    made: set[str] = set()
    total = 0
    for rel in todo:
        target = posixpath.join(str(root), rel)
        _mkdirs(sftp, posixpath.dirname(target), made)
        src = root / rel
        st = src.stat()
        data = src.read_bytes()
        conn.put_bytes(data, target, mode=st.st_mode & 0o777)
        sftp.utime(target, (int(st.st_mtime), int(st.st_mtime)))
        total += len(data)
    return SyncResult(len(todo), len(local) - len(todo), total)


def _mkdirs(sftp, path: str, made: set[str]) -> None:
    if path in made or path in ("", "/"):
        return
    try:
        sftp.stat(path)
    except OSError:
        _mkdirs(sftp, posixpath.dirname(path), made)
        try:
            sftp.mkdir(path, 0o755)
        except OSError:
            sftp.stat(path)  # created meanwhile is fine; anything else raises
    made.add(path)
