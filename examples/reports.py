"""A periodic report written to a file: an actor timer asks another actor for totals.

    python examples/reports.py [--out PATH] [--interval SECONDS]

- ``sales`` is an actor that keeps running totals of the orders cast to it.
- ``shop`` is a BackgroundService that simulates customers: a few orders a second.
- ``reporter`` is an actor with a timer (``send_every``): every ``--interval`` seconds (default
  60) it asks ``sales`` for the totals since the last report (``call``) and writes them to
  ``--out`` (default ``sales-report.txt``), replacing the file atomically so that a reader never
  sees half a report. The file is written in a worker thread: file I/O never blocks the tree.

For a report on a calendar schedule ("every day at 06:00") that must not be skipped when the
program is down, use a recurring durable job instead (``docs/jobs.md``). Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import logging
import os
import random
from pathlib import Path

import attrs
import trio

from actors import Actor, BackgroundService, Request, handler
from supervisors import ChildSpec, Supervisor, current_tree, run

log = logging.getLogger("reports")


@attrs.frozen
class Order:
    amount: float


@attrs.frozen
class Totals:
    orders: int
    revenue: float


@attrs.frozen
class TakeTotals(Request[Totals]):
    """Return the totals since the last TakeTotals and start counting again."""


@attrs.frozen
class WriteReport:
    """The reporter's timer message."""


class Sales(Actor):
    """Running totals of the orders cast to it."""

    def __init__(self) -> None:
        self.orders = 0
        self.revenue = 0.0

    @handler
    def order(self, msg: Order) -> None:
        self.orders += 1
        self.revenue += msg.amount

    @handler
    def take(self, msg: TakeTotals) -> Totals:
        totals = Totals(self.orders, round(self.revenue, 2))
        self.orders, self.revenue = 0, 0.0
        return totals


class Shop(BackgroundService):
    """Simulates customers: an order every 0.1 to 0.5 s."""

    async def execute(self) -> None:
        sales = current_tree().ref("reports/sales")
        while True:
            await sales.cast(Order(amount=round(random.uniform(5, 120), 2)))
            await trio.sleep(random.uniform(0.1, 0.5))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (atomic on POSIX)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Reporter(Actor):
    """Every ``interval`` seconds, writes the totals since the previous report to ``out``."""

    def __init__(self, out: Path, interval: float) -> None:
        self.out = out
        self.interval = interval
        self.written = 0

    async def on_start(self) -> None:
        self.since = datetime.datetime.now(datetime.UTC)
        self.send_every(self.interval, WriteReport())

    @handler
    async def write(self, msg: WriteReport) -> None:
        totals = await current_tree().ref("reports/sales").call(TakeTotals())
        now = datetime.datetime.now(datetime.UTC)
        text = (
            f"Sales report {self.written + 1}\n"
            f"from:    {self.since:%Y-%m-%d %H:%M:%S} UTC\n"
            f"to:      {now:%Y-%m-%d %H:%M:%S} UTC\n"
            f"orders:  {totals.orders}\n"
            f"revenue: {totals.revenue:.2f}\n"
        )
        await trio.to_thread.run_sync(write_atomically, self.out, text)
        self.written += 1
        self.since = now
        log.info("report %d written to %s (%d orders)", self.written, self.out, totals.orders)


def build_tree(out: Path, interval: float) -> Supervisor:
    return Supervisor(
        name="reports",
        children=[
            ChildSpec(name="sales", factory=Sales),
            ChildSpec(name="reporter", factory=functools.partial(Reporter, out, interval)),
            ChildSpec(name="shop", factory=Shop),
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="write a sales report to a file periodically")
    parser.add_argument("--out", type=Path, default=Path("sales-report.txt"), help="the report file")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between reports (default 60)")
    options = parser.parse_args()
    return run(build_tree(options.out, options.interval))


if __name__ == "__main__":
    raise SystemExit(main())
