"""The indexes that keep the hot and the search statements fast, shown by SQLite's planner."""

from __future__ import annotations

import pytest

from supervisors.jobs._sql import STATEMENTS as Q
from supervisors.jobs._sqlite_db import SQLiteDB


def plan(sql: str, params: dict[str, object]) -> str:
    db = SQLiteDB(":memory:")
    try:
        rows = db.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    finally:
        db.close()
    return "\n".join(str(r[3]) for r in rows)


def test_claim_walks_the_ready_index_in_priority_order_without_sorting() -> None:
    """The claim reads ``jobs_ready`` (queue, priority DESC, run_at, id) and needs no sort; the
    key limit's count uses ``jobs_running_key``."""
    text = plan(Q["claim"], {"owner": "a", "lease_until": 1.0, "queue": "q", "limit": 5, "claim_tag": "1"})
    assert "USING INDEX jobs_ready (queue=?)" in text
    assert "jobs_running_key" in text
    assert "TEMP B-TREE" not in text


def test_the_rate_window_is_read_through_its_index() -> None:
    """Counting a queue's claims in the window uses ``queue_claims_at``."""
    text = plan(Q["rate_limit"], {"queue": "q", "now": 0.0})
    assert "queue_claims_at" in text


def test_continuations_are_found_through_the_parent_index() -> None:
    """Resolving a parent's continuations and listing them read ``jobs_parent``, not the table."""
    for name in ("continue_succeeded", "continue_dead", "abandon"):
        text = plan(Q[name], {"id": 1, "now": 0.0, "result": None})
        assert "jobs_parent" in text, (name, text)
    text = plan(Q["continuations_of"].format(ids=":a, :b"), {"a": 1, "b": 2})
    assert "jobs_parent" in text


def test_has_work_seeks_the_state_index_without_reading_every_job() -> None:
    """`Store.has_work` (asked by ``wait_idle`` after each recorded outcome) seeks
    ``jobs_search_state`` by state and queue, reading the index alone: its cost does not grow
    with the jobs kept (``counts`` reads every one)."""
    text = plan(Q["has_work"], {"queue": "q"})
    assert "SEARCH jobs USING COVERING INDEX jobs_search_state (state=? AND queue=?)" in text, text
    assert "SCAN" not in text, text


_STATES: tuple[tuple[str, ...], ...] = ((), ("dead",), ("dead", "retrying"))
_COMBINATIONS = [
    {"states": states, "queue": queue, "name": name, "since": since, "until": until}
    for states in _STATES
    for queue in (None, "q")
    for name in (None, "mail")
    for since, until in ((None, None), (1.0, None), (1.0, 2.0))
]


QUEUES = ("mail", "reports")
"""The queues that have jobs, for the searches by state alone (one walk per state and queue)."""


def _search_plan(**fields: object) -> list[str]:
    from supervisors.jobs import JobQuery
    from supervisors.jobs._sql import SQLITE, search_statements

    statements = search_statements(SQLITE, JobQuery(**fields), QUEUES)  # type: ignore[arg-type]
    assert len(statements) == 1
    sql, params = statements[0]
    return plan(sql, params).splitlines()


@pytest.mark.parametrize("fields", _COMBINATIONS, ids=lambda f: ",".join(k for k, v in f.items() if v) or "none")
@pytest.mark.parametrize("cursor", [None, "forward", "back"])
def test_every_search_the_dashboard_offers_walks_a_search_index_in_order(
    fields: dict[str, object], cursor: str | None
) -> None:
    """Each combination of states, queue, name and creation time the dashboard and CLI offer
    (from the first page or a cursor, either way) reads ``jobs`` only through a
    ``jobs_search_*`` index, in the index's order: no full scan of the table, no sort of the
    rows found (several walks: one per state asked, and without a queue or a name one per
    state and queue, or per queue; only their pages are merged)."""
    from supervisors.jobs import Cursor

    if cursor is not None:
        fields = {**fields, "cursor": Cursor(created_at=1.5, id=7, forward=cursor == "forward")}
    lines = _search_plan(**fields)
    reads = [line for line in lines if line.startswith(("SCAN jobs", "SEARCH jobs"))]
    assert reads
    page_rows = "SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)"  # the merged page's rows, by id
    walks = [line for line in reads if line != page_rows]
    assert walks
    assert all("INDEX jobs_search_" in line for line in walks), lines
    assert all(line.startswith("SEARCH jobs") for line in walks), lines
    per_state = len(fields["states"]) > 1 or not (fields["queue"] or fields["name"])  # type: ignore[arg-type]
    assert page_rows not in reads or per_state, lines
    for i, line in enumerate(lines):
        if "TEMP B-TREE" in line:  # only merges of the walks' pages, each at most a page
            assert per_state, lines
            assert lines[i - 1].startswith(("SCAN s", "SCAN found", "USE TEMP B-TREE")), lines


def test_a_search_on_the_arguments_alone_walks_each_queue_newest_first() -> None:
    """Argument filters use no index of their own: alone, they are checked on the jobs walked
    newest first through ``jobs_search_queue``, once per queue (each walk stops at a page)."""
    for fields in ({"args_contains": "x"}, {"args_equal": {"user_id": 42}}):
        reads = [line for line in _search_plan(**fields) if "jobs" in line]
        assert reads == ["SEARCH jobs USING INDEX jobs_search_queue (queue=?)"] * len(QUEUES)


def test_a_search_by_states_alone_walks_each_state_of_each_queue() -> None:
    """States without a queue or a name: one walk of ``jobs_search_state`` (state, queue,
    ``created_at``) per state and queue, each in order and reading the index alone; then the
    rows of the merged page, by id."""
    reads = [line for line in _search_plan(states=("dead", "retrying")) if line.startswith("SEARCH jobs")]
    assert reads == ["SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)"] + [
        "SEARCH jobs USING COVERING INDEX jobs_search_state (state=? AND queue=?)"
    ] * 4


def test_the_queues_of_a_search_are_found_without_reading_every_job() -> None:
    """The list of queues is one step down ``jobs_search_queue`` per queue (a skip scan)."""
    from supervisors.jobs._sql import SEARCH_QUEUES

    text = plan(SEARCH_QUEUES, {})
    assert "SCAN jobs" not in text
    assert "jobs_search_queue" in text


def test_searches_with_more_walks_than_a_statement_takes_are_split_and_merged() -> None:
    """Past `SEARCH_WALKS_PER_STATEMENT` walks (many queues), the walks are spread over several
    statements, whose pages `merge_pages` merges in the search's order."""
    from supervisors.jobs import JobQuery
    from supervisors.jobs._sql import SEARCH_WALKS_PER_STATEMENT, SQLITE, search_statements

    queues = [f"q{i:03d}" for i in range(SEARCH_WALKS_PER_STATEMENT + 1)]
    statements = search_statements(SQLITE, JobQuery(states=("dead",)), queues)  # type: ignore[arg-type]
    assert len(statements) == 2
    assert plan(*statements[1]).splitlines() == [
        "SEARCH jobs USING INDEX jobs_search_state (state=? AND queue=?)"
    ]


@pytest.mark.parametrize("fields", _COMBINATIONS[1::2], ids=lambda f: ",".join(k for k, v in f.items() if v) or "none")
def test_postgres_can_answer_every_search_from_a_search_index_without_sorting(
    fields: dict[str, object], pg_schema: str
) -> None:
    """On PostgreSQL (sequential and bitmap scans and sorts disabled, so that the plan shows
    what the indexes allow on an empty table), a search reads ``jobs`` through
    ``jobs_search_*`` indexes in order: no sort of the jobs found (several states: only the
    merge of their pages may be sorted)."""
    import psycopg
    from _pg import PG_URL

    from supervisors.jobs import Cursor, JobQuery
    from supervisors.jobs._pg_migrations import migrate
    from supervisors.jobs._sql import POSTGRES, search_statements

    query = JobQuery(**fields, cursor=Cursor(created_at=1.5, id=7))  # type: ignore[arg-type]
    statements = search_statements(POSTGRES, query, QUEUES)
    assert len(statements) == 1
    sql, params = statements[0]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        migrate(conn, pg_schema)
        conn.execute(f"SET search_path = {pg_schema}")
        for plan_kind in ("seqscan", "bitmapscan", "sort"):  # a sort is still used when nothing else can be
            conn.execute(f"SET enable_{plan_kind} = off")
        lines = [r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall()]
    text = "\n".join(lines)
    several = len(fields["states"]) > 1 or not (fields["queue"] or fields["name"])  # type: ignore[arg-type]
    # The rows of a page merged from several walks are read by id (the primary key).
    scans = [line for line in lines if " on jobs" in line and not (several and "jobs_pkey" in line)]
    assert scans, text
    assert all("jobs_search_" in line for line in scans), text
    sorts = [line for line in lines if "Sort" in line and "Key" not in line]
    assert len(sorts) <= (2 if several else 0), text  # the merge of the walks, then of the page


def test_a_retried_claim_looks_for_its_jobs_among_the_running_ones_only() -> None:
    """``adopt`` (run only when a claim is run again) reads the running jobs through an index
    keyed by state, never the whole table."""
    text = plan(Q["adopt"], {"claim_tag": "1", "owner": "a"})
    assert "USING INDEX" in text
    assert "(state=?)" in text
    assert "SCAN jobs" not in text
