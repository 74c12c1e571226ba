"""Property test: the in-memory and SQLite stores give the same answers to any operation sequence."""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisors.jobs import (
    Failure,
    InMemoryStore,
    Job,
    JobError,
    NewJob,
    SQLiteStore,
    Store,
)

T0 = 1_000_000.0

insert = st.builds(
    lambda queue, delay, key, attempts: ("insert", queue, delay, key, attempts),
    st.sampled_from(["a", "b"]),
    st.sampled_from([0.0, 5.0, 20.0]),
    st.sampled_from([None, None, "k1", "k2"]),
    st.integers(1, 3),
)
claim = st.tuples(st.just("claim"), st.sampled_from(["a", "b"]), st.integers(1, 3), st.sampled_from(["o1", "o1", "o2"]))
settle = st.tuples(
    st.just("settle"),
    st.sampled_from(["ok", "retry", "dead", "release"]),
    st.integers(0, 5),
    st.sampled_from(["o1", "o1", "o2"]),
)
other = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([1.0, 10.0, 40.0])),
    st.tuples(st.just("promote")),
    st.tuples(st.just("expire")),
    st.tuples(st.just("retry"), st.integers(1, 8)),
    st.tuples(st.just("prune"), st.sampled_from([0.0, 30.0])),
)
operations = st.lists(st.one_of(insert, claim, settle, settle, other), min_size=5, max_size=40)


def snapshot(jobs: list[Job]) -> list[tuple[object, ...]]:
    return [
        (j.id, j.queue, j.state, j.attempt, j.max_attempts, j.run_at, j.finished_at,
         j.lease_until, j.unique_key, [(e.attempt, e.error) for e in j.errors])
        for j in jobs
    ]  # fmt: skip


async def apply(store: Store, ops: list[tuple[object, ...]]) -> list[object]:
    now = T0
    out: list[object] = []
    claimed_ids: list[int] = []  # settle picks among claimed jobs, by index
    for op in ops:
        kind = op[0]
        if kind == "insert":
            _, queue, delay, key, attempts = op
            job = NewJob(
                name="j", queue=str(queue), args="null", run_at=now + float(delay),  # type: ignore[arg-type]
                max_attempts=int(attempts), unique_key=key,  # type: ignore[arg-type, call-overload]
            )  # fmt: skip
            out.append(await store.insert([job], now=now))
        elif kind == "claim":
            _, queue, limit, owner = op
            claimed = await store.claim(
                str(queue),
                int(limit),
                owner=str(owner),
                now=now,
                lease_until=now + 30,  # type: ignore[call-overload]
            )
            out.append([(c.id, c.attempt) for c in claimed])
            claimed_ids.extend(c.id for c in claimed)
        elif kind == "settle":
            _, how, index, owner = op
            if not claimed_ids:
                continue
            jid = claimed_ids[-1 - int(index) % len(claimed_ids)]  # type: ignore[call-overload]
            if how == "ok":
                await store.settle(owner=str(owner), now=now, succeeded=[jid])
            elif how == "release":
                await store.settle(owner=str(owner), now=now, released=[jid])
            else:
                retry_at = now + 3 if how == "retry" else None
                await store.settle(owner=str(owner), now=now, failed=[Failure(jid, "E", "tb", retry_at)])
        elif kind == "advance":
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
        elif kind == "prune":
            out.append(await store.prune(before=now - float(op[1])))  # type: ignore[arg-type]
        out.append(snapshot(await store.list(limit=1000)))
    counts = await store.counts()
    out.append((dict(counts.by_state), {q: dict(v) for q, v in counts.by_queue.items()}))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_memory_and_sqlite_stores_agree_on_every_sequence(ops: list[tuple[object, ...]]) -> None:
    """Any sequence of store operations gives the same results and states on both stores."""
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteStore(Path(tmp) / "jobs.db")

        async def run_both() -> tuple[list[object], list[object]]:
            try:
                return await apply(InMemoryStore(), ops), await apply(sqlite, ops)
            finally:
                await sqlite.aclose()

        memory_result, sqlite_result = trio.run(run_both)
    assert memory_result == sqlite_result
