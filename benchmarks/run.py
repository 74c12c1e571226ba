"""Benchmark runner: ``python benchmarks/run.py [--quick] [--json PATH] [--peers] [--only NAME]``.

Runs every workload in ``benchmarks/workloads`` for our runtime and for a raw-Trio baseline
(and, with ``--peers``, for triotp / pykka / huey), then prints one table.

* Every figure is the median over several repetitions; every repetition of every
  implementation runs in its own fresh ``trio.run`` (peers without Trio run plain threads).
* Implementations are interleaved per repetition (raw, ours, peers, raw, ours, ...) so that
  machine drift hits all of them alike.
* Before every repetition: ``gc.collect()``; automatic GC stays enabled with the default
  thresholds for every implementation (identical GC state for ours and the baseline).
* ratio = our cost / raw Trio cost for costs (time, bytes); for throughput (rates)
  ratio = raw rate / our rate.  Either way ratio > 1 means we are slower / bigger.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import faulthandler
import gc
import importlib
import io
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _common, _peers  # noqa: E402
from benchmarks._common import Metric, NotApplicable, RuntimeUnavailable  # noqa: E402
from benchmarks.workloads import ALL  # noqa: E402

FULL_REPS = 5
QUICK_REPS = 2
FULL_MEM_REPS = 3
QUICK_MEM_REPS = 1


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class ImplResult:
    def __init__(self, name: str) -> None:
        self.name = name
        self.samples: dict[str, list[float]] = {}
        self.status = "ok"  # ok | n/a | unavailable | error
        self.reason = ""

    def add(self, values: dict[str, float], metrics: list[Metric], memory: bool) -> None:
        keys = {m.our_source for m in metrics if m.memory == memory}
        keys |= {m.raw_source for m in metrics if m.memory == memory}
        for key in keys:
            if key in values:
                self.samples.setdefault(key, []).append(float(values[key]))

    def value(self, key: str) -> float | None:
        s = self.samples.get(key)
        return _common.median(s) if s else None

    def cell(self, key: str, metric: Metric) -> str:
        v = self.value(key)
        if v is not None:
            return fmt(v, metric.digits)
        return {"unavailable": "unavail", "error": "ERROR"}.get(self.status, "n/a")


def fmt(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "inf"
    if digits == 0 or abs(v) >= 10_000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else (f"{r:.2f}x" if not math.isinf(r) else "inf")


def run_one(fn: Any, n: int) -> dict[str, float]:
    _common.prepare_repetition()
    faulthandler.dump_traceback_later(_common.REP_TIMEOUT + 120, exit=True)
    try:
        return fn(n)
    finally:
        faulthandler.cancel_dump_traceback_later()


def run_workload(mod: Any, n: int, reps: int, mem_reps: int,
                 peers: list[str]) -> dict[str, ImplResult]:
    impls: list[tuple[str, Any]] = [("raw_trio", mod.raw_trio), ("ours", mod.ours)]
    for p in peers:
        impls.append((p, getattr(mod, f"peer_{p}", None)))
    results = {name: ImplResult(name) for name, _ in impls}
    has_memory = any(m.memory for m in mod.METRICS)

    def attempt(name: str, fn: Any, label: str, memory: bool) -> None:
        res = results[name]
        if res.status != "ok":
            return
        if fn is None:  # no peer_<name> function: shown as n/a, no note
            res.status = "n/a"
            return
        t0 = time.perf_counter()
        try:
            if memory:
                with _common.traced_memory():
                    values = run_one(fn, n)
            else:
                values = run_one(fn, n)
        except NotApplicable as exc:
            res.status, res.reason = "n/a", str(exc)
            _log(f"  {mod.NAME}/{name}: n/a ({exc})")
            return
        except RuntimeUnavailable as exc:
            res.status, res.reason = "unavailable", str(exc)
            _log(f"  {mod.NAME}/{name}: skipped - {exc}")
            return
        except BaseException as exc:  # a broken implementation must not stop the suite
            if isinstance(exc, KeyboardInterrupt):
                raise
            res.status = "error"
            res.reason = f"{type(exc).__name__}: {exc}"
            _log(f"  {mod.NAME}/{name}: ERROR {res.reason}")
            _log("".join(traceback.format_exception(exc, limit=-8)))
            return
        res.add(values, mod.METRICS, memory)
        shown = ", ".join(f"{k}={fmt(v)}" for k, v in values.items())
        _log(f"  {mod.NAME}/{name} {label}: {shown}  ({time.perf_counter() - t0:.2f}s)")

    for rep in range(reps):
        for name, fn in impls:
            attempt(name, fn, f"rep {rep + 1}/{reps}", memory=False)
    if has_memory:
        for rep in range(mem_reps):
            for name, fn in impls:
                attempt(name, fn, f"tracemalloc rep {rep + 1}/{mem_reps}", memory=True)
    return results


def machine_info() -> dict[str, Any]:
    import trio

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "trio": trio.__version__,
        "gc_thresholds": list(gc.get_threshold()),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cap, src = _common.mailbox_size()
    info["mailbox_size"] = cap
    info["mailbox_size_source"] = src
    try:
        _common.runtime()
        info["runtime"] = "available"
    except RuntimeUnavailable as exc:
        info["runtime"] = str(exc)
    info["peers"] = _peers.versions()
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small N and fewer repetitions (CI smoke run; timings meaningless)")
    ap.add_argument("--json", metavar="PATH", help="write results as a JSON list to PATH")
    ap.add_argument("--markdown", metavar="PATH",
                    help="also write the printed table and notes to PATH as a Markdown file "
                         "(the block the top-level README quotes)")
    ap.add_argument("--peers", action="store_true",
                    help="pip-install triotp, pykka and huey into this interpreter and add "
                         "their figures (peers that fail to import are skipped with a note)")
    ap.add_argument("--no-install", action="store_true",
                    help="with --peers: do not run pip, use whatever peers are importable")
    ap.add_argument("--only", metavar="NAME", action="append",
                    help="run only this workload (repeatable or comma-separated): "
                         + ", ".join(ALL))
    ap.add_argument("--reps", type=int, help="override the number of repetitions")
    ap.add_argument("--n", type=int, help="override N for every selected workload")
    args = ap.parse_args(argv)

    selected = ALL
    if args.only:
        selected = [s.strip() for item in args.only for s in item.split(",") if s.strip()]
        unknown = [s for s in selected if s not in ALL]
        if unknown:
            ap.error(f"unknown workload(s) {unknown}; choose from {ALL}")

    peers: list[str] = []
    peer_notes: list[str] = []
    if args.peers:
        if not args.no_install:
            _peers.install_peers()
            importlib.invalidate_caches()
        for p in _peers.PEERS:
            ok, why = _peers.available(p)
            if ok:
                peers.append(p)
            else:
                peer_notes.append(f"peer {p} skipped: {why}")
                print(f"note: peer {p} skipped: {why}", flush=True)

    reps = args.reps or (QUICK_REPS if args.quick else FULL_REPS)
    mem_reps = min(reps, QUICK_MEM_REPS if args.quick else FULL_MEM_REPS)
    info = machine_info()
    started = time.perf_counter()

    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    unavailable: dict[str, list[str]] = {}
    for wname in selected:
        mod = importlib.import_module(f"benchmarks.workloads.{wname}")
        n = args.n or (mod.QUICK_N if args.quick else mod.N)
        _log(f"== {wname}: {mod.TITLE} (n={n:,}, reps={reps})")
        ctx = getattr(mod, "context", None)
        if ctx is not None:
            with ctx():
                results = run_workload(mod, n, reps, mem_reps, peers)
        else:
            results = run_workload(mod, n, reps, mem_reps, peers)
        for note in getattr(mod, "NOTES", []):
            # "workload/peer: ..." notes only when that peer was run
            subject = note.split(":", 1)[0].split("/")
            if len(subject) == 2 and subject[1] in _peers.PEERS and subject[1] not in peers:
                continue
            notes.append(note)
        for name, res in results.items():
            if res.status == "unavailable":
                unavailable.setdefault(f"{name}: {res.reason}", []).append(wname)
            elif res.status != "ok" and res.reason:
                notes.append(f"{wname}/{name}: {res.status} - {res.reason}")
        raw = results["raw_trio"]
        ours = results["ours"]
        for m in mod.METRICS:
            raw_value = raw.value(m.raw_source)
            ours_value = ours.value(m.our_source)
            row: dict[str, Any] = {
                "workload": wname,
                "metric": m.key,
                "baseline": m.baseline,
                "unit": m.unit,
                "kind": m.kind,
                "n": n,
                "reps": mem_reps if m.memory else reps,
                "ours": ours_value,
                "raw_trio": raw_value,
                "ratio": m.ratio(ours_value, raw_value),
                "ours_status": ours.status,
                "samples": {
                    name: r.samples.get(m.raw_source if name == "raw_trio" else m.our_source, [])
                    for name, r in results.items()
                },
                "_cells": {
                    name: r.cell(m.raw_source if name == "raw_trio" else m.our_source, m)
                    for name, r in results.items()
                },
            }
            for p in peers:
                pv = results[p].value(m.our_source)
                row[p] = pv
                row[f"{p}_ratio"] = m.ratio(pv, raw_value)
                row[f"{p}_status"] = results[p].status
            rows.append(row)

    for reason, wnames in unavailable.items():
        notes.append(f"skipped {reason} [{', '.join(wnames)}]")
    total = time.perf_counter() - started
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_table(rows, peers, info, args.quick, reps, mem_reps, notes + peer_notes, total)
    table_text = buffer.getvalue()
    sys.stdout.write(table_text)
    if args.markdown:
        command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.markdown).write_text(f"Output of `{command}`:\n\n```\n{table_text.strip()}\n```\n")
        print(f"wrote {args.markdown}")

    if args.json:
        out = []
        for row in rows:
            obj = {k: v for k, v in row.items() if not k.startswith("_")}
            for k, v in list(obj.items()):
                if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
                    obj[k] = None
            obj["mode"] = "quick" if args.quick else "full"
            obj["env"] = info
            out.append(obj)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def print_table(rows: list[dict[str, Any]], peers: list[str], info: dict[str, Any],
                quick: bool, reps: int, mem_reps: int, notes: list[str], total: float) -> None:
    print()
    print(f"# benchmarks ({'QUICK - timings meaningless' if quick else 'full'}) "
          f"{info['date']}")
    print(f"# machine: nproc={info['nproc']} cpu={info.get('cpu', '?')} "
          f"python={info['python']} ({info['implementation']}) trio={info['trio']} "
          f"{info['platform']}")
    print(f"# mailbox capacity for raw channels: {info['mailbox_size']} "
          f"({info['mailbox_size_source']}); our runtime: {info['runtime']}")
    if info["peers"]:
        print("# peers: " + ", ".join(f"{k} {v}" for k, v in info["peers"].items()))
    print(f"# each figure: median of {reps} repetitions (memory: {mem_reps} tracemalloc "
          f"repetitions), each in a fresh trio.run; gc.collect() before each, automatic GC on")
    print()
    # a peer column only when that peer can do at least one of the selected workloads
    peers = [p for p in peers if any(row.get(f"{p}_status") != "n/a" for row in rows)]
    header = ["workload", "metric", "unit", "raw baseline", "raw_trio", "ours", "ratio"]
    for p in peers:
        header += [p, f"{p}/raw"]
    table = [header]
    for row in rows:
        cells = row["_cells"]
        line = [row["workload"], row["metric"], row["unit"], row["baseline"], cells["raw_trio"],
                cells["ours"], fmt_ratio(row["ratio"])]
        for p in peers:
            line += [cells[p], fmt_ratio(row[f"{p}_ratio"])]
        table.append(line)
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        print("  ".join(str(c).ljust(w) if j < 4 else str(c).rjust(w)
                        for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("ratio: for costs (us, bytes) = our cost / raw Trio cost; for rates (msg/s, jobs/s) "
          "= raw Trio rate / our rate. >1 means slower/bigger than raw Trio, same run. "
          "Peer columns use the same definition (peer vs raw Trio).")
    print("memory: tracemalloc (Python allocations traced while the N actors are alive, "
          "divided by N), from separate repetitions so tracing never affects timings.")
    print("logging: the 'supervisors' and 'actors' loggers get a NullHandler and "
          "propagate=False during the restart workload (raw Trio does not log); "
          "triotp runs under a logbook NullHandler (its LogLevel.NONE).")
    seen = set()
    for note in notes:
        if note not in seen:
            seen.add(note)
            print(f"note: {note}")
    print(f"total wall time: {total:.1f}s")


if __name__ == "__main__":
    sys.exit(main())
