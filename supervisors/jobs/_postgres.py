"""`PostgresStore`: jobs in PostgreSQL, shared by any number of hosts.

It runs the statements of `_sql` rendered for `POSTGRES` through the same Python as the SQLite
store (`SQLiteDB`'s methods, on a psycopg connection), so the lifecycle is written once.

Driver: synchronous psycopg 3 whose socket waits are the Trio task's (`_pg_green`: each call
runs in a greenlet; where psycopg would block it switches to the task, which awaits
``wait_readable`` / ``wait_writable``), on a small pool of connections: no worker thread on the
path of a call. A call runs shielded from cancellation, so it always ends with its transaction
committed or rolled back and its outcome known (a cancelled caller sees the cancellation at its
next checkpoint), as a worker thread that is not abandoned did. Sending the server a cancel
request instead would race with the call's next statement, its ``COMMIT`` included, and leave
that outcome unknown; a call takes about a millisecond, so the shield costs little.

Concurrent `PostgresStore.insert` calls (one-by-one enqueues from many tasks) share one
transaction (`_pg_group`): one multi-row ``INSERT`` and one ``COMMIT`` per round, each caller
returning once its own jobs are committed; if anything in the shared transaction fails, it is
rolled back and each caller's jobs are inserted alone, so one caller's error is never another's.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, final

import attrs
import outcome
import trio

from supervisors import outside_trio

from ._errors import StoreError
from ._model import Failure, HostInfo, JobState, NewJob, Settled, Success, Token
from ._pg_green import GreenPool, green_connection_class
from ._pg_group import Gather
from ._pg_migrations import check_schema_name, migrate
from ._registry import JobRegistry
from ._requests import JobRequest, build
from ._sql import POSTGRES, prune_indexes, render
from ._sqlite_db import SQLiteDB
from ._sqlstore import SQLStore

if TYPE_CHECKING:
    from ._model import RetryPolicy

T = TypeVar("T")

_OUTAGE_TAIL = 5.0
"""Seconds after a recovery during which a lost connection counts as the tail of that outage
(connections it broke are found one by one as they are used), not as a new outage."""

logger = logging.getLogger("supervisors.jobs.postgres")

PG_STATEMENTS = render(POSTGRES)
"""The statements of `_sql`, rendered for PostgreSQL."""

DEFAULT_SCHEMA = "supervisors_jobs"
"""The PostgreSQL schema a `PostgresStore` uses unless told otherwise."""

_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the install
        msg = (
            "PostgresStore needs psycopg 3 and greenlet: install the extra with "
            "pip install 'trio-supervisors[postgres]'"
        )
        raise StoreError(msg) from exc
    return psycopg


def _plain(job: NewJob) -> bool:
    """Whether ``job`` needs no look-up to insert: settings resolved, no unique key, no
    schedule, no parent (nothing can conflict)."""
    return (
        not job.defined and job.unique_key is None and job.schedule is None
        and job.parent_id is None
    )  # fmt: skip


class _Ambiguous(Exception):
    """The connection broke while ``COMMIT`` was in flight: the outcome is unknown."""


class PostgresDB(SQLiteDB):
    """`SQLiteDB`'s methods on one psycopg connection with `search_path` set to the schema.

    A write joins the transaction already open on the connection (the caller's own, for a
    transactional enqueue), else runs in its own ``BEGIN`` ... ``COMMIT``.
    """

    Q = PG_STATEMENTS
    dialect = POSTGRES
    prune_indexes = prune_indexes(POSTGRES)
    mark = "%s"

    def __init__(self, conn: Any, schema: str) -> None:
        self.path = schema
        self.conn = conn
        self.schema = schema
        self._trimmed: dict[str, float] = {}

    def close(self) -> None:  # the pool owns the connection
        pass

    @contextlib.contextmanager
    def _write(self, *, pipeline: bool = False) -> Iterator[Any]:
        """A write transaction; inside one already open (the caller's), that one.

        With ``pipeline``, its statements go in psycopg's pipeline mode: ``BEGIN`` ...
        ``COMMIT`` in as few round trips as the write's own reads allow. Only for writes whose
        statements need no ``rowcount`` (unknown until the results arrive) and that are safe to
        repeat (fenced): a failure anywhere, the ``COMMIT``'s included, is retried, so an
        uncertain ``COMMIT`` needs no telling apart (`_Ambiguous`)."""
        c: Any = self.conn
        psycopg = _psycopg()
        if c.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield c
            return
        if pipeline:
            try:
                with c.pipeline():
                    c.execute("BEGIN")
                    yield c
                    c.execute("COMMIT")
            except BaseException:
                if not c.closed and c.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    with contextlib.suppress(Exception):
                        c.execute("ROLLBACK")
                raise
            return
        c.execute("BEGIN")
        try:
            yield c
        except BaseException:
            if not c.closed:
                with contextlib.suppress(Exception):
                    c.execute("ROLLBACK")
            raise
        try:
            c.execute("COMMIT")
        except psycopg.OperationalError as exc:
            raise _Ambiguous(str(exc)) from exc

    # --- set-based writes: `_sql.BATCHED`, one statement for many jobs --------------------------

    def insert(self, jobs: Sequence[NewJob], now: float) -> list[int]:
        """As `SQLiteDB.insert`; each run of consecutive jobs without a unique key or an
        occurrence is one ``insert_many`` (ids are still given in the order of ``jobs``)."""
        return self._inserted([(jobs, now)])[0]

    def _inserted(self, items: list[tuple[Sequence[NewJob], float]]) -> list[list[int]]:
        """The ids of each item's jobs, inserted together. When every job is plain (settings
        resolved; no unique key, schedule or parent) and no transaction is open, that is one
        ``insert_many`` committed on its own (one round trip instead of ``BEGIN``, ``INSERT``,
        ``COMMIT``); a connection lost during it raises `_Ambiguous`, as during a ``COMMIT``.
        Otherwise a transaction (or the caller's), as `_insert_all` does."""
        c: Any = self.conn
        psycopg = _psycopg()
        if (
            c.autocommit
            and c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            and all(_plain(job) for jobs, _ in items for job in jobs)
        ):
            out: list[list[int]] = [[] for _ in items]
            run = [(job, now) for jobs, now in items for job in jobs]
            owners = [k for k, (jobs, _) in enumerate(items) for _ in jobs]
            try:
                self._insert_run(c, run, owners, out)
            except psycopg.OperationalError as exc:
                raise _Ambiguous(str(exc)) from exc
            return out
        with self._write() as c:
            return self._insert_all(c, items)

    def insert_grouped(self, items: list[tuple[Sequence[NewJob], float]]) -> list[outcome.Outcome[list[int]]]:
        """`insert` of each ``(jobs, now)`` of ``items``, in one transaction when there are
        several (the plain jobs of all of them in one ``insert_many``), each item's ids in
        order. If that transaction fails other than by a lost connection, it is rolled back and
        each item is inserted alone, so each gets its own outcome; a lost connection (or an
        uncertain ``COMMIT``) is raised, for every item."""
        if len(items) <= 1:
            return [outcome.Value(self.insert(jobs, now)) for jobs, now in items]
        psycopg = _psycopg()
        try:
            return [outcome.Value(ids) for ids in self._inserted(items)]
        except (psycopg.OperationalError, _Ambiguous):
            raise
        except Exception:
            return [outcome.capture(self.insert, jobs, now) for jobs, now in items]

    def _insert_all(self, c: Any, items: list[tuple[Sequence[NewJob], float]]) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in items]
        cache: dict[str, Any] = {}
        run: list[tuple[NewJob, float]] = []
        owners: list[int] = []  # the item of each job of ``run``
        for k, (jobs, now) in enumerate(items):
            for job in jobs:
                if job.defined:
                    job = self._resolve(c, job, cache)
                if job.unique_key is None and job.schedule is None and job.parent_id is None:
                    run.append((job, now))
                    owners.append(k)
                    continue
                self._insert_run(c, run, owners, out)
                out[k].append(self._insert_one(c, job, now)[0])
        self._insert_run(c, run, owners, out)
        return out

    def _insert_run(self, c: Any, run: list[tuple[NewJob, float]], owners: list[int], out: list[list[int]]) -> None:
        """One ``insert_many`` of ``run``; each new id appended to its item's list in ``out``;
        ``run`` and ``owners`` emptied."""
        if not run:
            return
        params = {
            "created_ats": [now for _, now in run],
            "names": [j.name for j, _ in run],
            "queues": [j.queue for j, _ in run],
            "argses": [j.args for j, _ in run],
            "states": ["enqueued" if j.run_at <= now else "scheduled" for j, now in run],
            "max_attemptses": [j.max_attempts for j, _ in run],
            "run_ats": [j.run_at for j, _ in run],
            "priorities": [j.priority for j, _ in run],
            "concurrency_keys": [j.concurrency_key for j, _ in run],
            "concurrency_limits": [j.concurrency_limit for j, _ in run],
        }
        # The sequence numbers the rows in insertion order, which is the arrays' order.
        ids = sorted(int(r[0]) for r in c.execute(self.Q["insert_many"], params))
        for k, job_id in zip(owners, ids, strict=True):
            out[k].append(job_id)
        run.clear()
        owners.clear()

    def _settle(
        self,
        c: Any,
        owner: str,
        now: float,
        succeeded: Sequence[Token | Success],
        failed: Sequence[Failure],
        released: Sequence[Token],
    ) -> Settled:
        return self._send_settle(c, owner, now, succeeded, failed, released)()

    def _send_settle(
        self,
        c: Any,
        owner: str,
        now: float,
        succeeded: Sequence[Token | Success],
        failed: Sequence[Failure],
        released: Sequence[Token],
    ) -> Callable[[], Settled]:
        """Send the statements recording these outcomes; return what reads their results
        (which tokens were refused) and resolves the continuations of the jobs that ended. In
        a pipeline only that read waits for the database, so a claim sent in between shares
        the round trips."""
        Q = self.Q
        succeed_ids: list[int] = []
        succeed_cursor: Any = None
        results: dict[int, str | None] = {}
        if succeeded:
            attempts: list[int] = []
            for item in succeeded:
                if isinstance(item, Success):
                    job_id, attempt, results[item.job_id] = item.job_id, item.attempt, item.result
                else:
                    (job_id, attempt), results[item[0]] = item, None
                succeed_ids.append(job_id)
                attempts.append(attempt)
            params = {
                "ids": succeed_ids, "attempts": attempts,
                "results": [results[i] for i in succeed_ids], "owner": owner, "now": now,
            }  # fmt: skip
            succeed_cursor = c.execute(Q["succeed_many"], params)
        fail_cursor: Any = None
        if failed:
            params = {
                "ids": [f.job_id for f in failed], "attempts": [f.attempt for f in failed],
                "retry_ats": [f.retry_at for f in failed], "errors": [f.error for f in failed],
                "tracebacks": [f.traceback for f in failed], "owner": owner, "now": now,
            }  # fmt: skip
            fail_cursor = c.execute(Q["fail_many"], params)
        awaiting = c.execute(Q["any_awaiting"]) if succeeded or failed else None
        late = super()._settle(c, owner, now, (), (), released) if released else Settled()

        def read() -> Settled:
            refused = set(late.refused)
            ends: list[tuple[int, JobState, str | None]] = []
            if succeed_cursor is not None:
                done = {int(r[0]) for r in succeed_cursor.fetchall()}
                refused.update(i for i in succeed_ids if i not in done)
                ends.extend((i, JobState.SUCCEEDED, results[i]) for i in succeed_ids if i in done)
            if fail_cursor is not None:
                states = {int(r[0]): str(r[1]) for r in fail_cursor.fetchall()}
                refused.update(f.job_id for f in failed if f.job_id not in states)
                ends.extend(
                    (f.job_id, JobState(states[f.job_id]), None)
                    for f in failed
                    if states.get(f.job_id, "retrying") != "retrying"
                )
            ready = late.ready
            if ends and awaiting is not None and awaiting.fetchone() is not None:
                ready = ready | self._resolve_continuations(c, ends, now)
            return Settled(refused=frozenset(refused), ready=ready)

        return read

    def settle_and_claim(
        self,
        queue: str,
        limit: int,
        owner: str,
        now: float,
        lease_until: float,
        succeeded: Sequence[Token | Success],
        failed: Sequence[Failure],
        tag: str | None = None,
        retry: bool = False,
    ) -> Settled:
        with self._write(pipeline=True) as c:
            read = self._send_settle(c, owner, now, succeeded, failed, ())
            got = (
                self._claim(c, queue, limit, owner, now, lease_until, tag, retry)
                if limit > 0
                else Settled()
            )
            settled = read()
            return attrs.evolve(got, refused=settled.refused, ready=settled.ready)

    def renew(self, tokens: Sequence[Token], owner: str, lease_until: float) -> frozenset[int]:
        if not tokens:
            return frozenset()
        ids = [t[0] for t in tokens]
        params = {
            "ids": ids, "attempts": [t[1] for t in tokens], "owner": owner,
            "lease_until": lease_until,
        }  # fmt: skip
        with self._write(pipeline=True) as c:
            kept = {int(r[0]) for r in c.execute(self.Q["renew_many"], params).fetchall()}
        return frozenset(i for i in ids if i not in kept)

    def _lock_schedule(self, c: Any, schedule: str) -> None:
        # Hosts firing the same schedule take turns, so the cursor's compare-and-set holds.
        c.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}.schedule:{schedule}",)
        )

    def reclaim(self, pages: int) -> int:
        return 0  # autovacuum gives space back


@final
class DatabaseClock:
    """The database's clock (``clock_timestamp()``), as seen from this host.

    Sampled on the store's connections (at `PostgresStore.open` and then at most every
    ``resync`` seconds, in calls the store makes anyway) and advanced between samples with this
    host's monotonic clock, which never jumps. A host whose wall clock is wrong by minutes reads
    the database's time, give or take half a round trip and the monotonic drift since the last
    sample (parts per million). Before the first sample it reads ``time.time()``.
    """

    def __init__(self, resync: float = 10.0) -> None:
        self.resync = resync
        self._base = time.time()
        self._mono = time.monotonic()
        self._synced = -float("inf")

    def now(self) -> float:
        """The database's current time in epoch seconds."""
        return self._base + (time.monotonic() - self._mono)

    def due(self) -> bool:
        return time.monotonic() - self._synced >= self.resync

    def sample(self, conn: Any) -> None:
        """Read the database's clock on ``conn`` (blocking)."""
        t0 = time.monotonic()
        db = float(conn.execute(_NOW).fetchone()[0])
        t1 = time.monotonic()
        self._base, self._mono, self._synced = db, (t0 + t1) / 2, t1

    def __repr__(self) -> str:
        return "DatabaseClock()"


def host_id() -> str:
    """An id unique to this process: host name, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


@final
class PostgresStore(SQLStore):
    """Jobs in a PostgreSQL database, in their own schema, shared by any number of hosts.

    - ``url``: a libpq connection string or URL (``postgresql://user@host:5432/db``).
    - ``schema``: the PostgreSQL schema of the tables; default ``"supervisors_jobs"``. Created
      and migrated by `open` (see `migrate_schema`).
    - ``pool_size``: connections used at once; default 4.
    - ``migrate``: run the migrations on `open`; default true. With false, `open` only checks
      the schema is current (migrate with ``python -m supervisors.jobs migrate URL``).
    - ``heartbeat``: how often `watch` records this host as alive in the ``hosts`` table, in
      seconds; default 5.0. A host whose heartbeat is older than three periods is shown dead.
    - ``poll_interval``: `watch`'s wait for a notification before it wakes the workers anyway
      (the fallback when a notification was missed); default 5.0 s.
    - ``register_host``: record this process in the ``hosts`` table when the store opens;
      default true. False for a tool that only reads or operates the jobs (the command line
      passes false), so that it is not listed as a host of the cluster.
    - ``keep_hosts``: how long a stopped or dead host stays in the ``hosts`` table after its
      last heartbeat, in seconds; default one day (86400). Every live host forgets older ones
      on its heartbeat, so the table (and the dashboard's hosts page) holds the recent ones only.

    Times: use `clock` (the database's clock) as the `JobSystem`'s clock; `JobSystem` does so
    by default with this store. A lost connection is retried with backoff (logged once per
    outage); an enqueue whose ``COMMIT`` was in flight when the connection broke raises
    `StoreError`, since it may or may not have committed.
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        pool_size: int = 4,
        migrate: bool = True,
        heartbeat: float = 5.0,
        poll_interval: float = 5.0,
        register_host: bool = True,
        keep_hosts: float = 86400.0,
    ) -> None:
        if pool_size < 1:
            msg = f"'pool_size' must be >= 1 (got {pool_size!r})"
            raise ValueError(msg)
        if not keep_hosts > 3 * heartbeat:
            msg = f"'keep_hosts' must be more than three heartbeats ({3 * heartbeat} s; got {keep_hosts!r})"
            raise ValueError(msg)
        self._register_host = register_host
        self._keep_hosts = keep_hosts
        self._started_at = 0.0
        self.url = url
        self.schema = check_schema_name(schema)
        self.host_id = host_id()
        self.application_name = f"supervisors-jobs:{self.schema}"
        """The ``application_name`` of the store's connections (seen in ``pg_stat_activity``)."""
        self.clock = DatabaseClock()
        self._pool_size = pool_size
        self._migrate = migrate
        self._heartbeat = heartbeat
        self._poll = poll_interval
        self._pool: GreenPool | None = None
        self._opening = trio.Lock()
        self._enqueues: Gather[tuple[Sequence[NewJob], float], list[int]] = Gather(
            self._insert_attempt, name=f"enqueues into {self.schema}"
        )
        self._outage: float | None = None
        self._recovered_at = -math.inf
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    # --- connections ---------------------------------------------------------------------------

    def connect(self, *, autocommit: bool = True) -> Any:
        """A new psycopg connection to the store's database with ``search_path`` set to the
        schema (blocking). The caller closes it."""
        return _psycopg().connect(self.url, autocommit=autocommit, **self._options())

    def _connect_green(self) -> Any:
        return green_connection_class().connect(self.url, autocommit=True, **self._options())

    def _options(self) -> dict[str, Any]:
        return {
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "connect_timeout": 10,
            "options": f"-c search_path={self.schema}",
            "application_name": self.application_name,
        }

    async def _green_pool(self) -> GreenPool:
        """The pool, after the first use has prepared the schema (`_prepare`, on a thread)."""
        pool = self._pool
        if pool is not None:
            return pool
        async with self._opening:
            if self._pool is None:
                with outside_trio():
                    await trio.to_thread.run_sync(self._prepare)
                self._pool = GreenPool(self._connect_green, self._pool_size)
            return self._pool

    async def _call(self, fn: Callable[[PostgresDB], T], *, abandon: bool = False) -> T:
        """One try of ``fn`` on a pooled connection, shielded from cancellation unless
        ``abandon`` (then a cancelled call closes its connection: see `_pg_green`)."""
        pool = await self._green_pool()

        def call(conn: Any) -> T:
            result = fn(PostgresDB(conn, self.schema))
            if self.clock.due():
                self.clock.sample(conn)
            return result

        return await pool.call(call, shield=not abandon)

    async def _run(self, fn: Callable[[SQLiteDB], T]) -> T:
        return await self._retrying(lambda: self._call(fn), ambiguous_ok=True)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], *, ambiguous_ok: bool) -> T:
        psycopg = _psycopg()
        delay = 0.05
        while True:
            started = time.monotonic()
            try:
                result = await attempt()
            except psycopg.errors.DeadlockDetected:
                await trio.sleep(self._rng.uniform(0, 0.01))  # rolled back: run it again
                continue
            except _Ambiguous as exc:
                if not ambiguous_ok:
                    self._lost(exc, started)
                    msg = (
                        f"the connection to PostgreSQL (schema {self.schema!r}) broke while a "
                        f"write was committing, so it may or may not have committed: {exc}; "
                        "check before writing it again"
                    )
                    raise StoreError(msg) from exc
                self._lost(exc, started)
            except psycopg.OperationalError as exc:
                self._lost(exc, started)
            else:
                # Only a call begun after the outage began shows the database is reachable again.
                if self._outage is not None and started >= self._outage:
                    logger.warning(
                        "PostgreSQL (schema %r) reachable again after %.1f s",
                        self.schema,
                        time.monotonic() - self._outage,
                    )
                    self._outage = None
                    self._recovered_at = time.monotonic()
                return result
            await trio.sleep(delay * self._rng.uniform(0.5, 1.0))
            delay = min(delay * 2, 5.0)

    def _lost(self, exc: BaseException, started: float) -> None:
        if self._outage is None and (
            started < self._recovered_at or time.monotonic() - self._recovered_at < _OUTAGE_TAIL
        ):
            # A call under way before the last outage ended, or a pooled connection that outage
            # broke found soon after it: the same outage (logged once, recovered), not a new one.
            logger.debug("PostgreSQL (schema %r): a call from before the recovery failed: %s", self.schema, exc)
            return
        if self._outage is None:
            self._outage = time.monotonic()
            logger.error(
                "lost PostgreSQL (schema %r): %s; retrying with backoff", self.schema, exc
            )

    @property
    def available(self) -> bool:
        """False while the database is unreachable (from the first failed call to the next
        successful one); for readiness checks."""
        return self._outage is None

    async def insert(self, jobs: Sequence[NewJob], *, now: float) -> list[int]:
        """As `Store.insert`; concurrent calls share a transaction (see the module's doc). A
        lost connection is retried, except during the ``COMMIT`` (`StoreError`: it may have
        committed)."""
        return await self._retrying(lambda: self._enqueues.submit((jobs, now)), ambiguous_ok=False)

    async def _insert_attempt(
        self, take: Callable[[], list[tuple[Sequence[NewJob], float]]]
    ) -> list[outcome.Outcome[list[int]]]:
        return await self._call(lambda db: db.insert_grouped(take()))

    # --- life cycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate the schema (or check it is current, with ``migrate=False``), register
        this host and read the database's clock; raises `StoreError` if that fails. Other
        methods do this on first use."""
        try:
            await self._green_pool()
        except _psycopg().OperationalError as exc:
            detail = " ".join(str(exc).split())
            msg = (
                f"cannot reach the PostgreSQL job store (schema {self.schema!r}): {detail}; check that "
                "the server runs and that the store's URL (host, port, database, user) is right"
            )
            raise StoreError(msg) from exc

    def _prepare(self) -> None:
        psycopg = _psycopg()
        try:
            with self.connect() as conn:
                if self._migrate:
                    migrate(conn, self.schema)
                else:
                    check_current(conn, self.schema)
                self.clock.sample(conn)
                if self._register_host:
                    self._started_at = self.clock.now()
                    self._register(conn)
        except psycopg.OperationalError:
            raise  # unreachable: retried by the callers that retry
        except psycopg.Error as exc:
            msg = f"cannot open the PostgreSQL job store (schema {self.schema!r}): {' '.join(str(exc).split())}"
            raise StoreError(msg) from exc

    async def aclose(self) -> None:
        """Mark this host stopped and close the connections; the store reopens them if used."""

        pool, self._pool = self._pool, None
        if pool is None:
            await trio.lowlevel.checkpoint()
            return
        stopped = self.clock.now()
        try:
            with trio.move_on_after(2.0), contextlib.suppress(Exception):
                await pool.call(
                    lambda conn: conn.execute(
                        "UPDATE hosts SET stopped_at = %s WHERE id = %s", (stopped, self.host_id)
                    ),
                    shield=False,
                )
        finally:
            pool.close()

    # --- hosts and wake-ups --------------------------------------------------------------------

    def _register(self, conn: Any) -> None:
        """Insert or refresh this host's row (alive now); a row forgotten while this host was
        cut off for longer than ``keep_hosts`` comes back."""
        now = self.clock.now()
        conn.execute(
            "INSERT INTO hosts (id, hostname, pid, started_at, heartbeat_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
            (self.host_id, socket.gethostname(), os.getpid(), self._started_at, now),
        )  # fmt: skip

    async def beat(self) -> None:
        """Record this host as alive now (the ``hosts`` table; nothing with ``register_host``
        false), and forget the hosts whose last heartbeat is older than ``keep_hosts``."""

        def beat(db: PostgresDB) -> None:
            if self._register_host:
                self._register(db.conn)
            db.conn.execute(
                "DELETE FROM hosts WHERE heartbeat_at < %s", (self.clock.now() - self._keep_hosts,)
            )

        await self._run(beat)  # type: ignore[arg-type]

    async def hosts(self) -> list[HostInfo]:
        """Every host registered in the schema, alive or not, oldest first, with the cluster
        singletons whose unexpired lease it holds and the jobs running under its leases."""

        def read(db: PostgresDB) -> list[HostInfo]:
            rows = db.conn.execute(
                "SELECT id, hostname, pid, started_at, heartbeat_at, stopped_at, "
                "extract(epoch FROM clock_timestamp())::float8 FROM hosts ORDER BY started_at, id"
            ).fetchall()
            # holders and lease owners are '<host id>/<random part>' (see Core.owner, _Elector)
            leases = db.conn.execute(
                "SELECT h.id, l.name FROM leases l JOIN hosts h "
                "ON left(l.holder, length(h.id) + 1) = h.id || '/' "
                "WHERE l.until >= extract(epoch FROM clock_timestamp()) ORDER BY l.name"
            ).fetchall()
            running = db.conn.execute(
                "SELECT h.id, j.id FROM jobs j JOIN hosts h "
                "ON left(j.lease_owner, length(h.id) + 1) = h.id || '/' "
                "WHERE j.state = 'running' ORDER BY j.id"
            ).fetchall()
            return [
                HostInfo(
                    id=r[0], hostname=r[1], pid=r[2], started_at=r[3], heartbeat_at=r[4],
                    stopped_at=r[5],
                    alive=r[5] is None and r[6] - r[4] <= 3 * self._heartbeat, read_at=r[6],
                    singletons=tuple(name for host, name in leases if host == r[0]),
                    running=tuple(job for host, job in running if host == r[0]),
                )
                for r in rows
            ]  # fmt: skip

        return await self._run(read)  # type: ignore[arg-type]

    async def watch(
        self,
        wake: Callable[[str | None], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on the schema's channel and call ``wake(queue)`` for each notification (a job
        of ``queue`` became ready on any host), ``wake(None)`` at the start, after a reconnect
        and every ``poll_interval`` without news; heartbeat this host every ``heartbeat``
        seconds. Runs until cancelled."""
        started = False
        next_beat = -float("inf")
        await self._run(lambda db: None)  # the schema exists before anyone is told to look
        while True:
            connected_at = time.monotonic()
            try:
                with outside_trio():
                    conn = await trio.to_thread.run_sync(self.connect)
            except Exception as exc:
                self._lost(exc, connected_at)
                if not started:
                    started = True
                    task_status.started()
                await trio.sleep(1.0)
                continue
            try:
                with outside_trio():
                    await trio.to_thread.run_sync(conn.execute, f'LISTEN "{self.schema}.jobs"')
                wake(None)
                if not started:
                    started = True
                    task_status.started()
                while True:
                    if trio.current_time() >= next_beat:
                        await self.beat()
                        next_beat = trio.current_time() + self._heartbeat
                    timeout = min(self._poll, max(0.0, next_beat - trio.current_time()))
                    queues = await _notifications(conn, timeout)
                    if queues is None:
                        wake(None)
                    for queue in queues or ():
                        wake(queue)
            except (OSError, _psycopg().OperationalError) as exc:
                self._lost(exc, connected_at)
                await trio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    conn.close()

    # --- transactional enqueue -------------------------------------------------------------------

    def enqueue_in(
        self,
        conn: Any,
        requests: Iterable[JobRequest],
        *,
        registry: JobRegistry | None = None,
        retry: RetryPolicy | None = None,
    ) -> list[int]:
        """Enqueue ``requests`` inside the current transaction of the caller's psycopg connection
        ``conn`` (blocking); return their ids. The jobs exist if and only if that transaction
        commits, and hosts are notified at its commit. ``registry`` validates as
        `JobSystem.enqueue` does (see `JobClient`). Times are the database's clock."""
        with conn.transaction():
            now = float(conn.execute(_NOW).fetchone()[0])
            jobs = [
                build(r, registry=registry, retry=retry, now=now) for r in requests
            ]
            saved = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
            conn.execute("SELECT set_config('search_path', %s, true)", (self.schema,))
            try:
                return PostgresDB(conn, self.schema).insert(jobs, now)
            finally:
                conn.execute("SELECT set_config('search_path', %s, true)", (saved,))


async def _notifications(conn: Any, timeout: float) -> list[str] | None:
    """The payloads of notifications received on ``conn`` within ``timeout`` seconds (returning
    at the first), ``None`` if none came. Waits with Trio on the connection's socket."""
    with trio.move_on_after(timeout):
        while True:
            await trio.lowlevel.wait_readable(conn.pgconn.socket)
            found = [n.payload for n in conn.notifies(timeout=0)]
            if found:
                return found
    return None


def check_current(conn: Any, schema: str) -> None:
    """Raise `StoreError` unless ``schema`` is migrated to this release's version."""
    from ._pg_migrations import PG_SCHEMA_VERSION

    migrate = f"python -m supervisors.jobs migrate URL --schema {schema}"
    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if exists is None:
        msg = (
            f"there is no schema {schema!r} in this PostgreSQL database: check the schema name "
            f"(the store's schema= or the URL's ?schema=); to create the job store there, run: "
            f"{migrate}"
        )
        raise StoreError(msg)
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.schema_migrations",)
    ).fetchone()
    version = 0
    if row[0]:
        version = conn.execute(f"SELECT max(version) FROM {schema}.schema_migrations").fetchone()[0]
    if not row[0]:
        msg = (
            f"schema {schema!r} of this PostgreSQL database holds no job store (no "
            f"schema_migrations table): check the schema name; to create the job store there, "
            f"run: {migrate}"
        )
        raise StoreError(msg)
    if version != PG_SCHEMA_VERSION:
        msg = (
            f"PostgreSQL job schema {schema!r} is at version {version or 0}, this release needs "
            f"{PG_SCHEMA_VERSION}; run: {migrate}"
        )
        raise StoreError(msg)
