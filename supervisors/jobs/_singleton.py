"""`ClusterSingleton`: run a child on exactly one host of a PostgreSQL cluster at a time.

The wrapper is an ordinary child spec (the supervisors core knows nothing of it): its actor, an
*elector*, competes for a named lease in the store's ``leases`` table. The lease's expiry is
the database's clock (``clock_timestamp()``) plus the lease period, set by the statement that
takes or renews it. The holder runs the wrapped child (an actor or a whole subtree, as a tree of
its own) and renews every ``renew`` seconds; it stops the child by its *local deadline*: the
monotonic time at which it sent its last successful renewal plus ``lease - margin``. Since the
database set the expiry after that send, the child is stopped before the lease can expire in the
database, whatever the database or the network do meanwhile (a partition included), provided
the two clocks run at the same rate (within parts per million). Another host takes the lease
only once it expired (or was released on a graceful stop), so the child never runs on two hosts
at once; failover happens within one lease period (plus ``retry``) of the holder's death.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, final

import attrs
import trio

from actors import BackgroundService
from supervisors import ChildSpec, Restart, Supervisor, open_tree

from ._postgres import PostgresDB, PostgresStore

T = TypeVar("T")

logger = logging.getLogger("supervisors.jobs.singleton")

_DB_NOW = "extract(epoch FROM clock_timestamp())"

_ACQUIRE = f"""
    INSERT INTO leases (name, holder, token, until) VALUES (%(name)s, %(holder)s, 1,
        {_DB_NOW} + %(lease)s)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = leases.token + 1,
        until = excluded.until
    WHERE leases.until < {_DB_NOW}
    RETURNING token
"""
_RENEW = f"""
    UPDATE leases SET until = {_DB_NOW} + %(lease)s
    WHERE name = %(name)s AND holder = %(holder)s AND token = %(token)s AND until >= {_DB_NOW}
    RETURNING token
"""
_RELEASE = """
    UPDATE leases SET until = 0, holder = NULL
    WHERE name = %(name)s AND holder = %(holder)s AND token = %(token)s
"""


@final
@attrs.frozen(kw_only=True)
class ClusterSingleton:
    """Where and how a singleton child competes for its lease.

    - ``store``: the `PostgresStore` whose ``leases`` table holds the lease.
    - ``lease``: the lease period, in seconds; default 15.0. A holder that dies is replaced
      within ``lease + retry`` seconds.
    - ``renew``: how often the holder renews, in seconds; default ``lease / 3``.
    - ``margin``: how long before the lease could expire the holder stops its child (the
      child's stop must fit in it: it is cancelled at the deadline), in seconds; default
      ``lease / 3``. ``renew + margin`` must be less than ``lease``.
    - ``retry``: how often a host that does not hold the lease tries to take it; default 1.0.
    """

    store: PostgresStore
    lease: float = 15.0
    renew: float | None = None
    margin: float | None = None
    retry: float = 1.0

    def __attrs_post_init__(self) -> None:
        if not (self.lease > 0 and self.retry > 0):
            msg = f"'lease' and 'retry' must be > 0 (got {self.lease!r}, {self.retry!r})"
            raise ValueError(msg)
        if not self.renew_every + self.stop_margin < self.lease:
            msg = (
                f"'renew' ({self.renew_every}) + 'margin' ({self.stop_margin}) must be less "
                f"than 'lease' ({self.lease}), so that a renewal can land before the deadline"
            )
            raise ValueError(msg)

    @property
    def renew_every(self) -> float:
        return self.renew if self.renew is not None else self.lease / 3

    @property
    def stop_margin(self) -> float:
        return self.margin if self.margin is not None else self.lease / 3

    def child_spec(
        self, spec: ChildSpec | Supervisor, *, name: str | None = None, shutdown: float = 10.0
    ) -> ChildSpec:
        """A child spec that runs ``spec`` (an actor's `ChildSpec` or a `Supervisor` subtree) on
        at most one host of the cluster at a time, under the lease ``name`` (default: the
        spec's name; hosts must agree on it). On the holder, ``spec`` runs as a tree of its own
        named after it; if that tree gives up, the elector crashes and its supervisor decides.
        ``shutdown`` is the elector's grace (the child's stop and the lease's release)."""
        lease_name = name if name is not None else spec.name
        return ChildSpec(
            name=spec.name,
            factory=functools.partial(_Elector, self, spec, lease_name),
            restart=Restart.PERMANENT,
            shutdown=shutdown,
        )


class _Elector(BackgroundService):
    cancel_on_stop = False  # a stop stops the child gracefully, then releases the lease

    def __init__(self, config: ClusterSingleton, spec: ChildSpec | Supervisor, name: str) -> None:
        super().__init__()
        self._c = config
        self._spec = spec if isinstance(spec, Supervisor) else Supervisor(name=spec.name, children=[spec])
        self._name = name
        self._holder = f"{config.store.host_id}/{uuid.uuid4().hex[:8]}"
        self._token: int | None = None

    async def _db(self, fn: Callable[[PostgresDB], T], timeout: float) -> T | None:
        """One try of ``fn`` on the store, given up (``None``) after ``timeout`` or on error."""
        store = self._c.store
        try:
            with trio.move_on_after(timeout):
                return await store._call(fn, abandon=True)
        except Exception as exc:
            logger.warning("singleton %r: the database call failed: %s", self._name, exc)
        return None

    def _params(self, **kw: Any) -> dict[str, Any]:
        return {"name": self._name, "holder": self._holder, "lease": self._c.lease, **kw}

    async def _acquire(self) -> int | None:
        def go(db: PostgresDB) -> int | None:
            row = db.conn.execute(_ACQUIRE, self._params()).fetchone()
            return None if row is None else int(row[0])

        return await self._db(go, self._c.retry)

    async def execute(self) -> None:
        c = self._c
        while not self.stop_requested:
            sent = trio.current_time()
            token = await self._acquire()
            if token is None:
                with trio.move_on_after(max(0.0, c.retry - (trio.current_time() - sent))):
                    await self.wait_stop_requested()
                continue
            self._token = token
            logger.info("singleton %r: holder %s (token %d)", self._name, self._holder, token)
            try:
                await self._hold(sent)
            finally:
                with trio.CancelScope(shield=True):
                    await self._release()
            if not self.stop_requested:
                logger.warning(
                    "singleton %r: %s lost the lease; its child was stopped before the lease "
                    "could expire", self._name, self._holder,
                )  # fmt: skip

    async def _hold(self, sent: float) -> None:
        """Run the child while renewals land; return once it is stopped (lease lost, or a stop
        was requested)."""
        c = self._c
        deadline = sent + c.lease - c.stop_margin
        async with trio.open_nursery() as nursery:
            child = trio.CancelScope(deadline=deadline)

            async def run_child() -> None:
                with child:
                    async with open_tree(self._spec) as tree:
                        await self.wait_stop_requested()
                        await tree.stop()  # graceful, within the lease's deadline
                nursery.cancel_scope.cancel()  # deadline passed: stop renewing too

            async def renew() -> None:
                token = self._token
                while True:
                    await trio.sleep(c.renew_every)
                    at = trio.current_time()

                    def go(db: PostgresDB) -> bool:
                        params = self._params(token=token)
                        return db.conn.execute(_RENEW, params).fetchone() is not None

                    ok = await self._db(go, max(0.0, child.deadline - at))
                    if ok:
                        child.deadline = at + c.lease - c.stop_margin
                    elif ok is False:  # refused: the lease expired or was taken
                        child.cancel()
                        return

            nursery.start_soon(run_child)
            nursery.start_soon(renew)

    async def _release(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return

        def go(db: PostgresDB) -> None:
            db.conn.execute(_RELEASE, self._params(token=token))

        await self._db(go, 2.0)

