"""The client-side cost of `PostgresStore` calls, for instruction counts (callgrind).

    python benchmarks/pg_calls.py N                  # N enqueues, then N claim + settle, one task
    python benchmarks/pg_calls.py --count N1 N2      # instructions per call under callgrind

One task makes N ``insert`` calls of one job, then N ``settle_and_claim`` rounds of one job,
on a fresh schema (dropped after). ``--count`` runs it under ``valgrind --tool=callgrind`` at
two sizes and prints (instructions at N2 - at N1) / (N2 - N1) per enqueue + claim-and-settle
pair: start-up, imports and the schema's migration cancel out, and the figure does not swing
with the machine's load as wall clock does. Every thread of the process is counted (so a
driver that hands calls to worker threads pays for them). Run it with ``PYTHONPATH`` set to
another checkout to count that version's driver on the same harness.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import uuid

URL = os.environ.get("SUPERVISORS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def run(n: int) -> None:
    import psycopg
    import trio

    from supervisors.jobs import NewJob, PostgresStore

    schema = f"calls_{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        store = PostgresStore(URL, schema=schema, register_host=False)
        await store.open()
        job = NewJob(name="j", queue="default", args="null", run_at=0.0, max_attempts=1)
        try:
            for _ in range(n):
                await store.insert([job], now=store.clock.now())
            done: list[tuple[int, int]] = []
            for _ in range(n):
                now = store.clock.now()
                got = await store.settle_and_claim(
                    "default", 1, owner="o", now=now, lease_until=now + 60, succeeded=done
                )
                done = [(c.id, c.attempt) for c in got.claimed]
        finally:
            await store.aclose()

    try:
        trio.run(main)
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def count(n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__, str(n)],
            check=True,
            capture_output=True,
        )
        with open(out, encoding="utf-8") as f:
            text = f.read()
    match = re.search(r"^summary:\s+(\d+)", text, re.MULTILINE)
    if match is None:  # pragma: no cover - callgrind's format
        raise RuntimeError("no summary line in callgrind's output")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("n", type=int, nargs="*")
    ap.add_argument("--count", action="store_true", help="instructions per pair under callgrind (N1 N2)")
    args = ap.parse_args(argv)
    if args.count:
        n1, n2 = args.n or [200, 1200]
        c1, c2 = count(n1), count(n2)
        print(f"instructions per enqueue + claim-and-settle: {(c2 - c1) / (n2 - n1):,.0f}")
        return 0
    run(args.n[0] if args.n else 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
