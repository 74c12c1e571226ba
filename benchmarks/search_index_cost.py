"""What the job-search indexes cost the write path: ``python benchmarks/search_index_cost.py [ROUNDS]``.

Runs the store's own statements (`SQLiteDB`, no Trio) on fresh files with the three
``jobs_search_*`` indexes (``with``) and with them dropped (``without``), alternating the two
in each round so that machine drift hits both alike: 2,000 enqueues of one job per
transaction, 4,000 jobs enqueued 1,000 per transaction, then every job claimed 10 at a time
and settled as succeeded (the runner's path). Rates are jobs per second of this process's CPU
time (``time.process_time``), which other work on the machine disturbs less than wall time;
the medians over the rounds are printed, with ``with / without``.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from supervisors.jobs import NewJob  # noqa: E402
from supervisors.jobs._sqlite_db import SQLiteDB  # noqa: E402

INDEXES = ("jobs_search_state", "jobs_search_queue", "jobs_search_name")


def one_round(with_indexes: bool) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="bench-index-")
    try:
        db = SQLiteDB(f"{tmp}/jobs.db")
        if not with_indexes:
            for index in INDEXES:
                db.conn.execute(f"DROP INDEX {index}")
        now = 1e9
        jobs = [NewJob(name="noop", queue="q", args='{"n":1}', run_at=now, max_attempts=3) for _ in range(6000)]
        t0 = time.process_time()
        for job in jobs[:2000]:
            db.insert([job], now)
        one_by_one = 2000 / (time.process_time() - t0)
        t0 = time.process_time()
        for start in range(2000, 6000, 1000):
            db.insert(jobs[start : start + 1000], now)
        bulk = 4000 / (time.process_time() - t0)
        done: list[tuple[int, int]] = []
        claimed = 0
        t0 = time.process_time()
        while True:
            got = db.settle_and_claim("q", 10, "bench", now, now + 30, done, ())
            done = [c.token for c in got.claimed]
            claimed += len(done)
            if not done:
                break
        claim = claimed / (time.process_time() - t0)
        db.close()
        return {"enqueue_1by1": one_by_one, "bulk_enqueue": bulk, "claim_settle": claim}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(rounds: int) -> None:
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in range(rounds):
        for with_indexes in (True, False) if i % 2 else (False, True):
            results[with_indexes].append(one_round(with_indexes))
    for key in ("enqueue_1by1", "bulk_enqueue", "claim_settle"):
        without = statistics.median(r[key] for r in results[False])
        with_ = statistics.median(r[key] for r in results[True])
        ratio = with_ / without
        print(f"{key:14} without {without:9,.0f} jobs/s   with {with_:9,.0f} jobs/s   with / without {ratio:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
