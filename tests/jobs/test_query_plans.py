"""The indexes that keep the hot and the search statements fast, shown by SQLite's planner."""

from __future__ import annotations

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
    text = plan(Q["claim"], {"owner": "a", "lease_until": 1.0, "queue": "q", "limit": 5})
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
