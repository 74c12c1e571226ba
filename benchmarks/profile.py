"""Profile one workload implementation with pyinstrument (optional dependency).

    python benchmarks/profile.py restart            # ours, full N
    python benchmarks/profile.py start --n 2000 --impl raw_trio
    python benchmarks/profile.py call --html /tmp/call.html

Needs ``pip install pyinstrument``. The figures printed by the workload are inflated by the
profiler; use the profile for *where* time goes, ``run.py`` for *how much*.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _common  # noqa: E402
from benchmarks.workloads import ALL  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="profile one workload with pyinstrument")
    ap.add_argument("workload", choices=ALL)
    ap.add_argument("--impl", default="ours", help="ours (default), raw_trio, or peer_<name>")
    ap.add_argument("--n", type=int, help="N (default: the workload's full N)")
    ap.add_argument("--interval", type=float, default=0.0002, help="sampling interval, s")
    ap.add_argument("--html", metavar="PATH", help="also write an HTML profile")
    args = ap.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed: python -m pip install pyinstrument")
        return 2

    mod = importlib.import_module(f"benchmarks.workloads.{args.workload}")
    fn = getattr(mod, args.impl)
    n = args.n or mod.N
    ctx = getattr(mod, "context", None)
    _common.prepare_repetition()
    profiler = Profiler(interval=args.interval)
    with ctx() if ctx is not None else contextlib.nullcontext():
        profiler.start()
        try:
            result = fn(n)
        finally:
            profiler.stop()
    print(f"{args.workload}/{args.impl} n={n}: {result} (inflated by profiling)")
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html())
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
