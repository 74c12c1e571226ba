"""Prometheus metrics of one dashboard: its own registry, fed by the event stream, snapshots and the stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from supervisors import ChildCrashed, ChildStartFailed, Event, GaveUp, MessagesDropped, Tree
from supervisors.jobs import Cursor, JobQuery, JobState, JobSystem, RunningJob

__all__ = ["METRICS", "Metrics"]

METRICS: tuple[tuple[str, str, str], ...] = (
    ("supervisors_child_up", "gauge", "1 while the child at path runs (running or stopping), else 0."),
    ("supervisors_child_restarts_total", "counter", "Restarts of the child at path (starts after the first)."),
    ("supervisors_child_crashes_total", "counter", "Crashes of the child at path seen since the dashboard started."),
    ("supervisors_child_start_failures_total", "counter", "Failed starts of the child at path seen since the "
     "dashboard started."),
    ("supervisors_supervisor_gave_up_total", "counter", "Times the supervisor at path gave up (intensity exceeded)."),
    ("supervisors_messages_dropped_total", "counter", "Messages dropped for the actor at path (it stopped for good)."),
    ("supervisors_mailbox_depth", "gauge", "Messages waiting in the mailbox of the actor at path."),
    ("supervisors_messages_handled_total", "counter", "Messages the actor at path has taken from its mailbox."),
    ("supervisors_jobs", "gauge", "Jobs in the store by queue and state."),
    ("supervisors_job_duration_seconds", "histogram", "Duration of the job runs that ended in this process, by "
     "queue and job name (whatever the outcome)."),
    ("supervisors_jobs_running", "gauge", "Jobs running in this process, by queue."),
    ("supervisors_queue_latency_seconds", "gauge", "Age of the oldest enqueued job of the queue (how long it has "
     "waited since due); 0 when none waits."),
    ("supervisors_dashboard_live_clients", "gauge", "Live pages (server-sent event streams) connected now."),
)
"""Every metric the dashboard exports: name, type, meaning (docs/dashboard.md lists them too)."""

_HELP = {name: text for name, _, text in METRICS}


class _TreeCollector(Collector):
    """Reads the tree's snapshot at scrape time: up, restarts, mailbox depth, messages handled."""

    def __init__(self, tree: Callable[[], Tree | None]) -> None:
        self._tree = tree

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("supervisors_child_up", _HELP["supervisors_child_up"], labels=["path"])
        restarts = CounterMetricFamily("supervisors_child_restarts", _HELP["supervisors_child_restarts_total"],
                                       labels=["path"])
        depth = GaugeMetricFamily("supervisors_mailbox_depth", _HELP["supervisors_mailbox_depth"], labels=["path"])
        handled = CounterMetricFamily("supervisors_messages_handled", _HELP["supervisors_messages_handled_total"],
                                      labels=["path"])
        tree = self._tree()
        if tree is not None:
            for node in tree.snapshot().walk():
                up.add_metric([node.path], 1.0 if node.started_at is not None else 0.0)
                restarts.add_metric([node.path], float(node.restarts))
                if node.mailbox_depth is not None:
                    depth.add_metric([node.path], float(node.mailbox_depth))
                if node.messages_handled is not None:
                    handled.add_metric([node.path], float(node.messages_handled))
        yield from (up, restarts, depth, handled)


class Metrics:
    """The dashboard's metrics, in a registry of its own (never prometheus-client's global one)."""

    def __init__(self, tree: Callable[[], Tree | None], systems: Sequence[JobSystem]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._systems = tuple(systems)
        self.registry.register(_TreeCollector(tree))
        r = self.registry
        self.crashes = Counter("supervisors_child_crashes", _HELP["supervisors_child_crashes_total"], ["path"],
                               registry=r)
        self.start_failures = Counter("supervisors_child_start_failures",
                                      _HELP["supervisors_child_start_failures_total"], ["path"], registry=r)
        self.gave_up = Counter("supervisors_supervisor_gave_up", _HELP["supervisors_supervisor_gave_up_total"],
                               ["path"], registry=r)
        self.dropped = Counter("supervisors_messages_dropped", _HELP["supervisors_messages_dropped_total"], ["path"],
                               registry=r)
        self.jobs = Gauge("supervisors_jobs", _HELP["supervisors_jobs"], ["queue", "state"], registry=r)
        self.durations = Histogram(
            "supervisors_job_duration_seconds", _HELP["supervisors_job_duration_seconds"], ["queue", "job"],
            registry=r, buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0),
        )
        self.running = Gauge("supervisors_jobs_running", _HELP["supervisors_jobs_running"], ["queue"], registry=r)
        self.latency = Gauge("supervisors_queue_latency_seconds", _HELP["supervisors_queue_latency_seconds"],
                             ["queue"], registry=r)
        self.live_clients = Gauge("supervisors_dashboard_live_clients", _HELP["supervisors_dashboard_live_clients"],
                                  registry=r)

    def on_event(self, event: Event) -> None:
        """The event-stream listener: counts crashes, failed starts, give-ups and dropped messages."""
        if isinstance(event, ChildCrashed):
            self.crashes.labels(event.path).inc()
        elif isinstance(event, ChildStartFailed):
            self.start_failures.labels(event.path).inc()
        elif isinstance(event, GaveUp):
            self.gave_up.labels(event.path).inc()
        elif isinstance(event, MessagesDropped):
            self.dropped.labels(event.path).inc(event.count)

    def on_run(self, run: RunningJob, seconds: float) -> None:
        """The job-run observer: one observation of the duration histogram."""
        self.durations.labels(run.queue, run.name).observe(seconds)

    async def render(self) -> bytes:
        """Refresh the store-fed gauges, then the whole registry in the Prometheus text format."""
        for system in self._systems:
            with trio.move_on_after(5.0):
                counts = await system.counts()
                for queue in sorted(set(system.queues) | set(counts.by_queue)):
                    per = counts.by_queue.get(queue, {})
                    for state in JobState:
                        self.jobs.labels(queue, state.value).set(per.get(state, 0))
                running: dict[str, int] = dict.fromkeys(system.queues, 0)
                for run in system.running():
                    running[run.queue] = running.get(run.queue, 0) + 1
                for queue, n in running.items():
                    self.running.labels(queue).set(n)
                for queue in system.queues:
                    self.latency.labels(queue).set(await oldest_wait(system, queue))
        return generate_latest(self.registry)


async def oldest_wait(system: JobSystem, queue: str) -> float:
    """How long the enqueued job of ``queue`` created first has waited since it was due, in
    seconds (0 if none). Read from the start of the search order (one step down an index, however
    many jobs wait)."""
    first = Cursor(created_at=0.0, id=0, forward=False)  # before every job: oldest first
    page = await system.search(JobQuery(states={JobState.ENQUEUED}, queue=queue, limit=1, cursor=first))
    if not page.jobs:
        return 0.0
    return max(0.0, (datetime.now(UTC) - page.jobs[0].run_at).total_seconds())
