"""Resources: opened by the host in order, closed in reverse, checked before the tree starts, scoped per job."""

# No "from __future__ import annotations": job functions below name resources local to each test
# in Annotated[...], which only eagerly evaluated annotations can see.
import functools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

import attrs
import pytest
import trio
from trio.testing import MockClock

from actors import Actor, BackgroundService, Request, handler
from supervisors import (
    EXIT_FAILED,
    ChildSpec,
    DynamicSupervisor,
    MissingResource,
    Resource,
    ResourceError,
    Supervisor,
    SupervisorGaveUp,
    current_resources,
    open_resources,
    open_tree,
    serve,
    uses,
    with_resources,
)
from supervisors.jobs import InMemoryStore, JobRegistry, JobState, JobSystem, RetryPolicy, TrioWallClock


class Recorder:
    """Makes resources that record 'open x' / 'close x' (with how the scope ended) in one log."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def resource(self, name: str, *, fail: bool = False, scoped: bool = False) -> Resource[str]:
        @asynccontextmanager
        async def manage() -> AsyncIterator[str]:
            if fail:
                raise OSError(f"cannot reach {name}")
            self.log.append(f"open {name}")
            try:
                yield f"<{name}>"
            except BaseException as exc:
                cancelled = isinstance(exc, BaseExceptionGroup) and exc.subgroup(trio.Cancelled) is not None
                self.log.append(f"close {name} after {'Cancelled' if cancelled else type(exc).__name__}")
                raise
            else:
                self.log.append(f"close {name}")

        return Resource(name, manage, scoped=scoped)


class Transactions:
    """A fake database whose scoped transactions commit or roll back, recording which."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.rows: list[str] = []
        self.connection = Resource("db", self._connect)
        self.transaction = Resource("tx", self._begin, scoped=True, requires=[self.connection])

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator["Transactions"]:
        yield self

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[list[str]]:
        assert self.connection.get() is self  # a scoped resource reaches the host's
        pending: list[str] = []
        try:
            yield pending
        except BaseException as exc:
            self.outcomes.append(f"rollback after {type(exc).__name__}")
            raise
        self.rows.extend(pending)
        self.outcomes.append("commit")


def user(log: list[str], resource: Resource[str], name: str = "user") -> type[Actor]:
    class User(Actor):
        value = uses(resource)

        async def on_start(self) -> None:
            log.append(f"start {name} with {self.value}")

        async def on_stop(self) -> None:
            log.append(f"stop {name}")

    return User


async def test_host_resources_open_in_order_before_the_tree_and_close_in_reverse_after_it(
    autojump_clock: MockClock,
) -> None:
    """Resources open in declaration order before any child starts; close in reverse after the last stops."""
    rec = Recorder()
    a, b = rec.resource("a"), rec.resource("b")
    spec = Supervisor(name="app", children=[ChildSpec(name="user", factory=user(rec.log, b))])
    async with open_tree(spec, resources=[a, b]):
        rec.log.append("body")
        assert a.get() == "<a>"
        assert current_resources()[b] == "<b>"
    assert rec.log == ["open a", "open b", "start user with <b>", "body", "stop user", "close b", "close a"]


async def test_resource_that_fails_to_open_stops_startup_naming_it_and_closes_those_opened(
    autojump_clock: MockClock,
) -> None:
    """A failing resource: the tree never starts, the ones before it close in reverse, the later never open."""
    rec = Recorder()
    a, b, broken, c = rec.resource("a"), rec.resource("b"), rec.resource("broken", fail=True), rec.resource("c")
    spec = Supervisor(name="app", children=[ChildSpec(name="user", factory=user(rec.log, a))])
    with pytest.raises(ResourceError, match=r"resource 'broken' failed to open: OSError: cannot reach broken") as info:
        async with open_tree(spec, resources=[a, b, broken, c]):
            pytest.fail("the tree must not start")
    assert isinstance(info.value.__cause__, OSError)
    assert rec.log == ["open a", "open b", "close b after ResourceError", "close a after ResourceError"]


async def test_host_exits_1_when_a_resource_fails_to_open(autojump_clock: MockClock) -> None:
    """serve() logs the failed resource and returns EXIT_FAILED without starting the tree."""
    rec = Recorder()
    broken = rec.resource("x", fail=True)
    spec = Supervisor(name="app", children=[ChildSpec(name="user", factory=user(rec.log, broken))])
    assert await serve(spec, handle_signals=False, resources=[broken]) == EXIT_FAILED
    assert rec.log == []


async def test_host_exits_1_and_logs_the_child_and_resource_when_one_is_missing(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """serve() refuses a tree whose child uses a resource it was not given: logged, EXIT_FAILED."""
    rec = Recorder()
    spec = Supervisor(name="app", children=[ChildSpec(name="user", factory=user(rec.log, rec.resource("db")))])
    assert await serve(spec, handle_signals=False) == EXIT_FAILED
    assert "child 'app/user' uses resource 'db'" in caplog.text
    assert rec.log == []


async def test_resources_close_in_reverse_after_the_root_gives_up(autojump_clock: MockClock) -> None:
    """A crashing tree still closes its resources, in reverse, after every child has stopped."""
    rec = Recorder()
    a, b = rec.resource("a"), rec.resource("b")

    class Crasher(BackgroundService):
        value = uses(a)

        async def execute(self) -> None:
            rec.log.append(f"run with {self.value}")
            await trio.sleep(1)
            raise RuntimeError("crash on purpose")

    spec = Supervisor(
        name="app", max_restarts=0, children=[ChildSpec(name="crasher", factory=Crasher),
                                             ChildSpec(name="user", factory=user(rec.log, b))]
    )
    with pytest.raises(SupervisorGaveUp):
        async with open_tree(spec, resources=[a, b]):
            await trio.sleep_forever()
    assert rec.log[:2] == ["open a", "open b"]
    assert rec.log[-3:] == ["stop user", "close b after SupervisorGaveUp", "close a after SupervisorGaveUp"]


async def test_resources_close_in_reverse_when_the_tree_is_cancelled(autojump_clock: MockClock) -> None:
    """Cancelling the whole block (no graces) still closes every resource, in reverse order."""
    rec = Recorder()
    a, b = rec.resource("a"), rec.resource("b")
    spec = Supervisor(name="app", children=[ChildSpec(name="user", factory=user(rec.log, a))])
    with trio.move_on_after(5) as scope:
        async with open_tree(spec, resources=[a, b]):
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert rec.log == ["open a", "open b", "start user with <a>", "close b after Cancelled", "close a after Cancelled"]


async def test_host_resource_outlives_child_restarts(autojump_clock: MockClock) -> None:
    """Every incarnation of a restarted child sees the same host resource, opened once."""
    opened: list[object] = []

    @asynccontextmanager
    async def make() -> AsyncIterator[object]:
        value = object()
        opened.append(value)
        yield value

    shared = Resource("shared", make)
    seen: list[object] = []
    third = trio.Event()

    class Flaky(BackgroundService):
        value = uses(shared)

        async def execute(self) -> None:
            seen.append(self.value)
            if len(seen) < 3:
                raise RuntimeError("crash on purpose")
            third.set()
            await trio.sleep_forever()

    spec = Supervisor(name="app", children=[ChildSpec(name="flaky", factory=Flaky)], max_restarts=5)
    async with open_tree(spec, resources=[shared]):
        await third.wait()
    assert len(opened) == 1
    assert seen == [opened[0]] * 3


async def test_missing_resource_is_an_error_before_anything_starts_naming_child_and_resource(
    autojump_clock: MockClock,
) -> None:
    """A child that uses a resource the host does not give: refused at build time, nothing opens or starts."""
    rec = Recorder()
    given, missing = rec.resource("given"), rec.resource("db")
    spec = Supervisor(
        name="app",
        children=[
            ChildSpec(name="ok", factory=user(rec.log, given, "ok")),
            Supervisor(name="inner", children=[
                ChildSpec(name="repo", factory=functools.partial(user(rec.log, missing, "repo"))),
            ]),
        ],
    )
    with pytest.raises(MissingResource, match=r"child 'app/inner/repo' uses resource 'db'.*Provided: \['given'\]"):
        async with open_tree(spec, resources=[given]):
            pytest.fail("the tree must not start")
    assert rec.log == []


async def test_child_added_at_run_time_is_checked_before_it_starts(autojump_clock: MockClock) -> None:
    """start_child refuses a dynamic child that uses a resource the host does not give; one it gives works."""
    rec = Recorder()
    given, missing = rec.resource("given"), rec.resource("db")
    spec = Supervisor(name="app", children=[DynamicSupervisor(name="pool")])
    async with open_tree(spec, resources=[given]) as tree:
        pool = tree.supervisor("pool")
        with pytest.raises(MissingResource, match="child 'app/pool/repo' uses resource 'db'"):
            await pool.start_child(ChildSpec(name="repo", factory=user(rec.log, missing, "repo")))
        await pool.start_child(ChildSpec(name="ok", factory=user(rec.log, given, "ok")))
        assert [child.name for child in pool.children()] == ["ok"]
    assert rec.log == ["open given", "start ok with <given>", "stop ok", "close given"]


async def test_opaque_factory_declares_its_resources_with_with_resources(autojump_clock: MockClock) -> None:
    """with_resources() tells the build-time check what a lambda factory's actor uses."""
    rec = Recorder()
    db = rec.resource("db")

    class Plain(Actor):
        async def on_start(self) -> None:
            rec.log.append(f"start with {db.get()}")

    spec = Supervisor(name="app", children=[ChildSpec(name="p", factory=with_resources(lambda: Plain(), db))])
    with pytest.raises(MissingResource, match="child 'app/p' uses resource 'db'"):
        async with open_tree(spec):
            pass
    async with open_tree(spec, resources=[db]):
        pass
    assert rec.log == ["open db", "start with <db>", "close db"]


async def test_resource_requirements_of_resources_are_checked_too(autojump_clock: MockClock) -> None:
    """A scoped resource that needs a host resource makes the child that uses it need that one."""
    db = Transactions()

    class Writer(Actor):
        tx = uses(db.transaction)

    spec = Supervisor(name="app", children=[ChildSpec(name="writer", factory=Writer)])
    with pytest.raises(MissingResource, match=r"child 'app/writer' uses resource 'db' \(required by 'tx'\)"):
        async with open_tree(spec):
            pass


def test_host_refuses_scoped_resources_duplicates_and_misordered_requirements() -> None:
    """The host's list holds host resources only, each once, each after what it requires."""
    db = Transactions()
    rec = Recorder()
    a = rec.resource("a")
    needs_a = Resource("needs_a", a.open, requires=[a])
    spec = Supervisor(name="app", children=[])
    for resources, message in [
        ([db.connection, db.transaction], "resource 'tx' is scoped"),
        ([a, a], "resource 'a' is listed twice"),
        ([needs_a, a], "resource 'needs_a' requires 'a', which must be listed before it"),
    ]:
        with pytest.raises(ValueError, match=message):
            trio.run(_open_and_close, spec, resources)


async def _open_and_close(spec: Supervisor, resources: list[Resource[object]]) -> None:
    async with open_tree(spec, resources=resources):
        pass


async def test_get_outside_any_host_names_the_resource_and_what_to_do() -> None:
    """Reading a resource that is not open raises ResourceError naming it."""
    rec = Recorder()
    lonely = rec.resource("lonely")
    with pytest.raises(ResourceError, match="resource 'lonely' is not available here"):
        lonely.get()
    async with open_resources([rec.resource("other")]):
        with pytest.raises(ResourceError, match=r"resource 'lonely' is not open here \(open: \['other'\]\)"):
            lonely.get()


@attrs.frozen
class Put(Request[list[str]]):
    row: str
    fail: bool = False


async def test_scope_opens_a_resource_per_message_and_rolls_back_when_the_handler_fails(
    autojump_clock: MockClock,
) -> None:
    """``async with tx.scope()`` in a handler: one transaction per message, rolled back by its error."""
    db = Transactions()

    class Writer(Actor):
        @handler
        async def put(self, msg: Put) -> list[str]:
            async with db.transaction.scope() as rows:
                rows.append(msg.row)
                assert db.transaction.get() is rows
                if msg.fail:
                    raise ValueError("bad row")
                return rows

    spec = Supervisor(name="app", children=[ChildSpec(name="writer", factory=Writer)], max_restarts=3)
    async with open_tree(spec, resources=[db.connection]) as tree:
        assert await tree.ref("writer").call(Put("one")) == ["one"]
        with pytest.raises(Exception, match="bad row"):
            await tree.ref("writer").call(Put("two", fail=True))
        assert await tree.ref("writer").call(Put("three")) == ["three"]
    assert db.outcomes == ["commit", "rollback after ValueError", "commit"]
    assert db.rows == ["one", "three"]


# -- job functions --------------------------------------------------------------------------------

START = datetime(2024, 1, 1, tzinfo=UTC)


def job_system(registry: JobRegistry, **kw: object) -> JobSystem:
    return JobSystem(
        registry=registry, store=InMemoryStore(), clock=TrioWallClock(START),
        retry=RetryPolicy(max_attempts=1), **kw,  # type: ignore[arg-type]
    )


async def test_scoped_transaction_commits_a_succeeding_job_and_rolls_back_a_failing_one(
    autojump_clock: MockClock,
) -> None:
    """A job's scoped transaction commits when the job succeeds and rolls back when it raises."""
    db = Transactions()
    reg = JobRegistry()

    @reg.job()
    async def insert(
        row: str, *, tx: Annotated[list[str], db.transaction], conn: Annotated[Transactions, db.connection]
    ) -> None:
        assert conn is db
        tx.append(row)
        if row == "bad":
            raise ValueError("bad row")

    jobs = job_system(reg)
    spec = Supervisor(name="app", children=[jobs.child_spec()])
    async with open_tree(spec, resources=[db.connection]):
        good = await jobs.wait_finished(await jobs.enqueue("insert", "good"))
        bad = await jobs.wait_finished(await jobs.enqueue("insert", "bad"))
    assert (good.state, bad.state) == (JobState.SUCCEEDED, JobState.DEAD)
    assert db.outcomes == ["commit", "rollback after ValueError"]
    assert db.rows == ["good"]


async def test_scoped_transaction_rolls_back_a_timed_out_job(autojump_clock: MockClock) -> None:
    """A job that overruns its timeout is cancelled; its transaction rolls back and the job fails."""
    db = Transactions()
    reg = JobRegistry()

    @reg.job(timeout=5.0)
    async def slow(row: str, *, tx: Annotated[list[str], db.transaction]) -> None:
        tx.append(row)
        if row == "slow":
            await trio.sleep(10)

    jobs = job_system(reg)
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()]), resources=[db.connection]):
        timed_out = await jobs.wait_finished(await jobs.enqueue("slow", "slow"))
        quick = await jobs.wait_finished(await jobs.enqueue("slow", "quick"))
    assert (timed_out.state, quick.state) == (JobState.DEAD, JobState.SUCCEEDED)
    assert "ran longer than its timeout of 5.0 s" in timed_out.errors[-1].error
    assert db.outcomes == ["rollback after Cancelled", "commit"]
    assert db.rows == ["quick"]


async def test_scoped_transaction_rolls_back_a_job_cancelled_at_shutdown(autojump_clock: MockClock) -> None:
    """A job still running when its grace ends is cancelled, and its transaction rolls back."""
    db = Transactions()
    reg = JobRegistry()
    started = trio.Event()

    @reg.job()
    async def slow(*, tx: Annotated[list[str], db.transaction]) -> None:
        tx.append("half")
        started.set()
        await trio.sleep(math.inf)

    jobs = job_system(reg, grace=1.0)
    spec = Supervisor(name="app", children=[jobs.child_spec()])
    async with open_tree(spec, resources=[db.connection]):
        await jobs.enqueue("slow")
        await started.wait()
    assert db.outcomes == ["rollback after Cancelled"]
    assert db.rows == []


async def test_job_function_resource_missing_from_the_host_fails_the_build(autojump_clock: MockClock) -> None:
    """A job function that declares a host resource the host does not give: refused before start."""
    db = Transactions()
    reg = JobRegistry()

    @reg.job()
    async def report(*, conn: Annotated[Transactions, db.connection]) -> None:
        pass

    jobs = job_system(reg)
    with pytest.raises(MissingResource, match="child 'app/jobs/workers/default' uses resource 'db'"):
        async with open_tree(Supervisor(name="app", children=[jobs.child_spec()])):
            pass


async def test_sync_job_function_gets_its_resources_too(autojump_clock: MockClock) -> None:
    """A plain ``def`` job (run in a thread) receives its declared resources as keyword arguments."""
    db = Transactions()
    reg = JobRegistry()
    seen: list[object] = []

    @reg.job()
    def count(*, conn: Annotated[Transactions, db.connection], tx: Annotated[list[str], db.transaction]) -> None:
        seen.append(conn)
        tx.append("counted")

    jobs = job_system(reg)
    async with open_tree(Supervisor(name="app", children=[jobs.child_spec()]), resources=[db.connection]):
        job = await jobs.wait_finished(await jobs.enqueue("count"))
    assert job.state is JobState.SUCCEEDED
    assert seen == [db]
    assert db.rows == ["counted"]
