"""One process per folder: an exclusive lock that says who holds it."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from personpose.io.atomic import atomic_write_json

LOCK, HOLDER = ".lock", ".lock.json"


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock."""


def holder_of(folder: Path) -> str:
    """``pid N on HOST since TIME`` of the process holding ``folder``'s lock."""
    try:
        h = json.loads((folder / HOLDER).read_text())
        return f"pid {h['pid']} on {h['host']} since {h['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its pid"


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder/.lock`` for the block, its holder (pid, host, start time) written to
    ``folder/.lock.json``.

    Raises :class:`FolderBusy` at once, naming the holder, when another process holds it.
    The operating system releases the lock of a killed process, so a stale ``.lock.json``
    never blocks a later run.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise FolderBusy(
            f"{folder} is in use by {holder_of(folder)}: wait for that run to end or stop it "
            "(two runs in one folder would overwrite each other's checkpoints)"
        ) from None
    try:
        atomic_write_json(
            folder / HOLDER,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        yield
    finally:
        (folder / HOLDER).unlink(missing_ok=True)
        lock.release()
