"""Cross-process wake-up for a SQLite job file: Unix datagram sockets in ``<file>-wake/``.

SQLite has no ``NOTIFY``. Each host running on the file binds one datagram socket in the
directory ``<file>-wake`` beside it (named after its process id and a random suffix, with the
database file's permission bits, so whoever may write the jobs may wake their hosts). A
`JobClient`, after its transaction committed, sends every socket there one datagram naming the
queues that got ready jobs (a line ``/scheduler`` when a job was scheduled for later). A host
wakes the runners of those queues at once; its ``poll_interval`` stays the fallback for
anything a datagram does not reach (a full socket buffer, a path too long for a socket, a
platform without Unix sockets, a directory the client cannot read).

Stale sockets (their host died) refuse datagrams; the client that finds one removes it. Sending
never blocks and never fails the enqueue: it is best effort on top of a committed write.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import socket
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

import trio

logger = logging.getLogger("supervisors.jobs")

SCHEDULER = "/scheduler"
"""The line of a datagram that wakes the scheduler (queue names never contain ``/``)."""

_MAX_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_AVAILABLE = hasattr(socket, "AF_UNIX")


def wake_dir(db: Path) -> Path:
    """The directory of the wake-up sockets of the job file ``db``."""
    return Path(f"{db}-wake")


async def listen(
    db: Path,
    wake: Callable[[str | None], None],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Bind this host's socket for ``db`` and call ``wake(queue)`` for each queue named in a
    datagram (``wake(None)`` for the scheduler) until cancelled; then remove the socket.

    Calls ``wake(None)`` once the socket is bound, for what was enqueued before. If no socket
    can be bound, logs why at INFO and waits for cancellation (polling still works).
    """
    bound = _bind(db)
    task_status.started()
    if bound is None:
        await trio.sleep_forever()
        return
    sock, path = bound
    try:
        wake(None)
        while True:
            await trio.lowlevel.wait_readable(sock)
            names: set[str | None] = set()
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    break
                for line in data.decode("utf-8", "replace").splitlines():
                    names.add(None if line == SCHEDULER else line)
            for name in names:
                wake(name)
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            path.unlink()


def _bind(db: Path) -> tuple[socket.socket, Path] | None:
    if not _AVAILABLE:
        logger.info("no Unix sockets here: jobs enqueued by other processes are found by polling")
        return None
    directory = wake_dir(db)
    path = directory / f"{os.getpid()}-{secrets.token_hex(4)}"
    if len(os.fsencode(path)) > _MAX_PATH:
        logger.info(
            "the wake-up socket path %r is too long for a Unix socket: jobs enqueued by other "
            "processes are found by polling; use a shorter path to the job file", str(path)
        )
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        directory.mkdir(exist_ok=True)
        sock.bind(os.fspath(path))
        with contextlib.suppress(OSError):
            path.chmod(stat.S_IMODE(db.stat().st_mode) | stat.S_IRUSR | stat.S_IWUSR)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        logger.info(
            "cannot bind a wake-up socket in %r (%s): jobs enqueued by other processes are "
            "found by polling", str(directory), exc.strerror or exc
        )
        return None
    return sock, path


class Poker:
    """The sending side, for `JobClient`: one unbound datagram socket, opened on first use."""

    def __init__(self, db: Path) -> None:
        self._dir = wake_dir(db)
        self._sock: socket.socket | None = None

    def poke(self, queues: Iterable[str], *, scheduler: bool = False) -> None:
        """Send every host on the file a datagram naming ``queues`` (and the scheduler)."""
        lines = sorted(set(queues))
        if scheduler:
            lines.append(SCHEDULER)
        if not lines or not _AVAILABLE:
            return
        try:
            names = os.listdir(self._dir)
        except OSError:
            return  # no host has bound a socket (or we may not look): hosts poll
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        data = "\n".join(lines).encode()
        for name in names:
            path = os.path.join(self._dir, name)
            try:
                self._sock.sendto(data, path)
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOTSOCK) and _is_socket(path):
                    with contextlib.suppress(OSError):
                        os.unlink(path)  # its host died without removing it
                # EAGAIN: the host has datagrams waiting already; others: it polls

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False
