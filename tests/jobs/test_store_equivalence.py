"""Property test: random operation sequences, with stalls, lease loss, cancellation, timeouts and
continuations, keep the lifecycle's invariants on every store; and the stores agree."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisors.jobs import (
    ClaimedJob,
    ContinueOn,
    Failure,
    InMemoryStore,
    Job,
    JobError,
    JobState,
    NewJob,
    ProgressReport,
    SQLiteStore,
    Store,
    Success,
)
from supervisors.jobs._lifecycle import TRANSITIONS, Op
from supervisors.jobs._model import UNFINISHED_STATES
from supervisors.jobs._sqlstore import SQLStore

T0 = 1_000_000.0
LEASE = 30.0

insert = st.builds(
    lambda queue, delay, key, attempts, priority, ckey, parent, on: (
        "insert", queue, delay, key, attempts, priority, ckey, parent, on
    ),
    st.sampled_from(["a", "b"]),
    st.sampled_from([0.0, 5.0, 20.0]),
    st.sampled_from([None, None, "k1", "k2"]),
    st.integers(1, 3),
    st.sampled_from([0, 0, 5, -1]),
    st.sampled_from([None, None, "u"]),
    st.one_of(st.none(), st.none(), st.integers(1, 8)),  # a continuation of job ``parent``
    st.sampled_from(list(ContinueOn)),
)
# A plain job inserted by a host with a free slot: claimed by its insert if its queue would hand
# it out next (`Store.insert_and_claim`).
insert_claim = st.tuples(
    st.just("insert_claim"), st.sampled_from(["a", "b"]), st.sampled_from(["o1", "o2"])
)
# ``lost``: the claim committed but its answer was lost with the connection, so the same call
# (the same claim tag) is run again, which must hand out the jobs the first run took.
claim = st.tuples(
    st.just("claim"), st.sampled_from(["a", "b"]), st.integers(1, 3), st.sampled_from(["o1", "o2"]),
    st.sampled_from([False, False, False, True]),
)
# An outcome recorded by whoever claimed the job: "ok", a failure to retry, a last failure, a
# timeout (a failure too), a cancellation (released). ``index`` picks one of the claims made so
# far, so stale claims (lease lost, job claimed again) are settled too.
settle = st.tuples(
    st.just("settle"),
    st.sampled_from(["ok", "retry", "dead", "timeout", "cancel"]),
    st.integers(0, 5),
)
renew = st.tuples(st.just("renew"), st.integers(0, 5))
# A progress report by whoever claimed the job (fenced as a renewal is).
report = st.tuples(st.just("report"), st.sampled_from([0.0, 0.5, 1.0]), st.integers(0, 5))
other = st.one_of(
    st.tuples(st.just("stall"), st.sampled_from([1.0, 10.0, 40.0])),  # time passes, no renewal
    st.tuples(st.just("promote")),
    st.tuples(st.just("expire")),
    st.tuples(st.just("retry"), st.integers(1, 8)),
    st.tuples(
        st.just("prune"), st.sampled_from([JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED])
    ),
    st.tuples(st.just("cancel"), st.integers(1, 8)),
    st.tuples(st.just("requeue"), st.integers(1, 8)),
    st.tuples(st.just("delete"), st.integers(1, 8)),
    st.tuples(st.just("pause"), st.sampled_from(["a", "b"]), st.booleans()),
    st.tuples(st.just("rate"), st.sampled_from(["a", "b"]), st.sampled_from([None, 1, 2])),
)
operations = st.lists(
    st.one_of(insert, insert_claim, claim, settle, settle, renew, report, other), min_size=5, max_size=40
)

# The lifecycle operations each step may perform (what the transition table is checked against).
# A step that ends a job also resolves its continuations (and theirs).
_RESOLVE = {Op.CONTINUE, Op.ABANDON}
MAY_DO: dict[str, set[Op]] = {
    "insert": set(),
    "insert_claim": set(),
    "claim": {Op.CLAIM},
    "settle": {Op.SUCCEED, Op.FAIL, Op.KILL, Op.INTERRUPT, Op.INTERRUPT_LAST, Op.CANCEL_END}
    | _RESOLVE,
    "renew": {Op.RENEW},
    "report": set(),
    "stall": set(),
    "promote": {Op.PROMOTE},
    "expire": {Op.EXPIRE, Op.EXPIRE_LAST, Op.CANCEL_END} | _RESOLVE,
    "retry": {Op.RETRY},
    "prune": {Op.PRUNE},
    "cancel": {Op.CANCEL} | _RESOLVE,
    "requeue": {Op.REQUEUE},
    "delete": {Op.DELETE} | _RESOLVE,
    "pause": set(),
    "rate": set(),
}


def snapshot(jobs: list[Job]) -> list[tuple[object, ...]]:
    return [
        (j.id, j.queue, j.state, j.attempt, j.max_attempts, j.run_at, j.finished_at,
         j.lease_until, j.unique_key, j.cancel_requested, j.priority, j.concurrency_key,
         [(e.attempt, e.error) for e in j.errors], j.result, j.parent_id, j.continue_on,
         j.continuations)
        for j in jobs
    ]  # fmt: skip


async def claim_run_again(
    store: Store, queue: str, limit: int, owner: str, now: float, tag: str
) -> tuple[list[ClaimedJob], list[ClaimedJob]]:
    """A claim that committed but whose answer was lost (the first list), and the same call,
    with the same claim tag, run again (the second)."""
    assert isinstance(store, SQLStore)
    first = await store._run(lambda db: db.claim(queue, limit, owner, now, now + LEASE, tag, False))
    again = await store._run(lambda db: db.claim(queue, limit, owner, now, now + LEASE, tag, True))
    return first, again


async def apply(store: Store, ops: list[tuple[object, ...]]) -> list[object]:
    """Run ``ops`` on ``store``, checking the invariants after each; return what was seen."""
    now = T0
    out: list[object] = []
    claims: list[tuple[int, int, str]] = []  # (job id, attempt, owner), every claim so far
    reports = 0
    known: dict[int, Job] = {}
    highest = 0  # the largest id ever given
    for op in ops:
        kind = str(op[0])
        current = {j.id: (j.attempt, j.state) for j in known.values()}
        refused: frozenset[int] = frozenset()
        token: tuple[int, int, str] | None = None
        n = 0
        if kind == "insert":
            _, queue, delay, key, attempts, priority, ckey, parent, on = op
            job = NewJob(
                name="j", queue=str(queue), args="null", run_at=now + float(delay),  # type: ignore[arg-type]
                max_attempts=int(attempts), unique_key=key,  # type: ignore[arg-type, call-overload]
                priority=int(priority), concurrency_key=ckey,  # type: ignore[arg-type, call-overload]
                concurrency_limit=None if ckey is None else 1,
                parent_id=parent, continue_on=on,  # type: ignore[arg-type]
            )  # fmt: skip
            try:
                ids = await store.insert([job], now=now)
                out.append(ids)
                # Ids are never reused: a new job's is above every id given before (a
                # unique key's live copy is one of those).
                assert ids[0] in known or ids[0] > highest
                highest = max(highest, *ids)
            except JobError as exc:  # a continuation of a job that does not exist
                assert parent not in known
                out.append(type(exc).__name__)
        elif kind == "insert_claim":
            _, queue, owner = op
            job = NewJob(name="j", queue=str(queue), args="null", run_at=now, max_attempts=2)
            job_id, got = await store.insert_and_claim(job, now=now, owner=str(owner), lease_until=now + LEASE)
            assert job_id > highest
            highest = job_id
            out.append((job_id, None if got is None else got.token))
            stored = await store.get(job_id)
            assert stored is not None
            if got is None:
                assert stored.state is JobState.ENQUEUED
            else:  # claimed as `claim` would: its queue had nothing waiting, no pause, no limit
                assert got.token == (job_id, 1)
                assert (stored.state, stored.attempt) == (JobState.RUNNING, 1)
                assert not any(
                    j.queue == queue and j.state is JobState.ENQUEUED for j in known.values()
                )
                assert queue not in await store.paused_queues()
                assert queue not in await store.rate_limits()
                claims.append((job_id, 1, str(owner)))
        elif kind == "claim":
            _, queue, limit, owner, lost = op
            if lost:
                first, claimed = await claim_run_again(
                    store, str(queue), int(limit), str(owner), now, f"lost-{len(out)}"  # type: ignore[call-overload]
                )
                assert [c.token for c in claimed] == [c.token for c in first]
            else:
                claimed = await store.claim(
                    str(queue), int(limit), owner=str(owner), now=now, lease_until=now + LEASE  # type: ignore[call-overload]
                )
            out.append([c.token for c in claimed])
            claims.extend((c.id, c.attempt, str(owner)) for c in claimed)
            # Priorities: no job left waiting without a key outranks one just claimed.
            if claimed:
                taken = {c.id for c in claimed}
                store_jobs = await store.list(limit=1000)
                lowest = min(j.priority for j in store_jobs if j.id in taken)
                waiting = [
                    j.priority for j in store_jobs
                    if j.queue == queue and j.state is JobState.ENQUEUED
                    and j.concurrency_key is None
                ]  # fmt: skip
                assert all(p <= lowest for p in waiting)
        elif kind in ("settle", "renew", "report") and claims:
            index = int(op[-1])  # type: ignore[call-overload]
            token = claims[-1 - index % len(claims)]
            job_id, attempt, owner = token
            if kind == "report":
                reports += 1
                fraction = float(op[1])  # type: ignore[arg-type]
                sent = ProgressReport(job_id, attempt, reports, fraction, "m", ((reports, now, "l"),), 0)
                refused = await store.report([sent], owner=owner, now=now)
                if not refused:  # stored under its attempt, readable at once
                    kept = {p.attempt: p for p in await store.progress(job_id)}
                    assert kept[attempt].fraction == fraction
                    assert kept[attempt].lines[-1].at.timestamp() == now
                    out.append([(p.attempt, p.fraction, len(p.lines)) for p in kept.values()])
            elif kind == "renew":
                refused = await store.renew([(job_id, attempt)], owner=owner, lease_until=now + LEASE)
            elif op[1] == "ok":
                ok = Success(job_id, attempt, f'{{"attempt":{attempt}}}')
                refused = (await store.settle(owner=owner, now=now, succeeded=[ok])).refused
            elif op[1] == "cancel":
                refused = (await store.settle(owner=owner, now=now, released=[(job_id, attempt)])).refused
            else:
                retry_at = None if op[1] == "dead" else now + 3
                error = "TimeoutError: ran too long" if op[1] == "timeout" else "E"
                failure = Failure(job_id, attempt, error, "tb", retry_at)
                refused = (await store.settle(owner=owner, now=now, failed=[failure])).refused
            out.append(sorted(refused))
        elif kind == "stall":
            now += float(op[1])  # type: ignore[arg-type]
        elif kind == "promote":
            promoted = await store.promote_due(now=now)
            out.append((sorted(promoted.queues), promoted.next_due))
        elif kind == "expire":
            out.append(sorted(await store.requeue_expired(now=now)))
        elif kind == "retry":
            try:
                out.append(await store.retry(int(op[1]), now=now, attempts=2))  # type: ignore[call-overload]
            except JobError as exc:
                out.append(type(exc).__name__)
        elif kind in ("cancel", "requeue", "delete"):
            job_id = int(op[1])  # type: ignore[call-overload]
            try:
                if kind == "cancel":
                    out.append((await store.cancel(job_id, now=now))[0])
                elif kind == "requeue":
                    out.append(await store.requeue(job_id, now=now, attempts=1))
                else:
                    await store.delete(job_id, now=now)
                    n = 1
            except JobError as exc:
                out.append(type(exc).__name__)
        elif kind == "rate":
            limit = None if op[2] is None else int(op[2])  # type: ignore[call-overload]
            await store.set_rate_limit(str(op[1]), limit=limit, period=10.0)
            out.append(await store.rate_limits())
        elif kind == "pause":
            await store.pause_queue(str(op[1]), paused=bool(op[2]), now=now)
            out.append(sorted(await store.paused_queues()))
        elif kind == "prune":
            n = await store.prune(state=op[1], before=now)  # type: ignore[arg-type]
            out.append(n)
        jobs = await store.list(limit=1000)
        after = {j.id: j for j in jobs}

        # No job lost: every job known before is still there, unless pruned by retention.
        missing = set(known) - set(after)
        assert all(known[i].state is not JobState.RUNNING for i in missing)
        assert len(missing) == n
        # Only the holder of the current token may act on a claimed job.
        if token is not None:
            job_id, attempt, owner = token
            before = known.get(job_id)
            fresh = (
                before is not None
                and before.state is JobState.RUNNING
                and before.attempt == attempt
                and claims_owner(claims, job_id, attempt) == owner
            )
            assert (job_id in refused) == (not fresh)
            if not fresh:
                assert after.get(job_id) == before  # refused: nothing changed
        # Every change of state is a documented transition of an operation this step may do.
        for job_id, job in after.items():
            if job_id in known:
                old_state = current[job_id][1]
                if job.state is not old_state:
                    assert any(
                        TRANSITIONS.get((old_state, lop)) is job.state for lop in MAY_DO[kind]
                    ), (kind, old_state, job.state)
                assert job.attempt >= current[job_id][0]  # attempts never go back
        for job_id in missing:
            assert any((known[job_id].state, lop) in TRANSITIONS for lop in MAY_DO[kind])
        # Continuations: none waits for a parent that has ended or is gone (it would wait for
        # ever); the parent lists it.
        for job in jobs:
            if job.state is JobState.AWAITING:
                parent_job = after.get(job.parent_id)  # type: ignore[arg-type]
                assert parent_job is not None, job
                assert parent_job.state in UNFINISHED_STATES, (job, parent_job)
                assert job.id in parent_job.continuations
        # Concurrency keys: never more running than the limit (1 for key "u").
        assert sum(j.state is JobState.RUNNING and j.concurrency_key == "u" for j in jobs) <= 1
        known = after
        out.append(snapshot(jobs))
    counts = await store.counts()
    assert counts.total == len(known)
    out.append((dict(counts.by_state), {q: dict(v) for q, v in counts.by_queue.items()}))
    return out


def claims_owner(claims: list[tuple[int, int, str]], job_id: int, attempt: int) -> str | None:
    """Who made the claim ``(job_id, attempt)``."""
    for i, a, owner in claims:
        if (i, a) == (job_id, attempt):
            return owner
    return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_every_sequence_keeps_the_invariants_and_both_stores_agree(
    ops: list[tuple[object, ...]],
) -> None:
    """Any sequence keeps the invariants (no job lost, no stale token obeyed, only documented
    transitions, no id given twice) and gives the same results on a file and on ``:memory:``."""
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteStore(Path(tmp) / "jobs.db")

        async def run_both() -> tuple[list[object], list[object]]:
            try:
                return await apply(InMemoryStore(), ops), await apply(sqlite, ops)
            finally:
                await sqlite.aclose()

        memory_result, sqlite_result = trio.run(run_both)
    assert memory_result == sqlite_result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(ops=operations)
def test_every_sequence_gives_the_same_results_on_postgres(
    ops: list[tuple[object, ...]], pg_schema: str
) -> None:
    """The same sequences keep the invariants on PostgreSQL, with the results of ``:memory:``
    (each example on emptied tables whose ids start again at 1)."""
    from _pg import PG_URL, close_sync

    from supervisors.jobs import PostgresStore

    store = PostgresStore(PG_URL, schema=pg_schema, pool_size=1)
    try:

        async def run_both() -> tuple[list[object], list[object]]:
            def empty(db: Any) -> None:
                db.conn.execute(
                    "TRUNCATE jobs, job_errors, schedules, paused_queues, schedule_definitions, "
                    "queue_limits, queue_claims, job_progress, job_log, schedule_ledger "
                    "RESTART IDENTITY"
                )

            await store._run(empty)
            # Not claimed at insert on PostgreSQL (the store's default): the other steps only.
            steps = [op for op in ops if op[0] != "insert_claim"]
            return await apply(InMemoryStore(), steps), await apply(store, steps)

        memory_result, pg_result = trio.run(run_both)
    finally:
        close_sync(store)
    assert memory_result == pg_result
