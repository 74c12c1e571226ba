"""Instructions per operation of one workload function, counted with callgrind (repeatable).

    python benchmarks/instructions.py cast _raw_batch
    python benchmarks/instructions.py cast _ours True            # extra args: Python literals
    python benchmarks/instructions.py restart _ours 0 --n1 200 --n2 1200

Runs ``run_trio(workloads.WORKLOAD.FUNC, n, *ARGS)`` under ``valgrind --tool=callgrind`` at two
sizes and prints (instructions at n2 - instructions at n1) / (n2 - n1): start-up, imports and
per-run set-up cancel out. Needs valgrind. Wall-clock ratios on a shared machine swing by tens
of percent; instruction counts do not, but they miss cache effects and GC pauses, so the
table of ``run.py`` stays the reference.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import ast, sys
sys.path.insert(0, {root!r})
from benchmarks._common import run_trio
from benchmarks.workloads import {workload} as mod
ctx = getattr(mod, "context", None)
args = [ast.literal_eval(a) for a in {args!r}]
if ctx is None:
    run_trio(getattr(mod, {func!r}), {n}, *args)
else:
    with ctx():
        run_trio(getattr(mod, {func!r}), {n}, *args)
"""


def count(workload: str, func: str, args: list[str], n: int) -> int:
    code = _CHILD.format(root=str(ROOT), workload=workload, func=func, args=args, n=n)
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
    )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no callgrind total in valgrind's output:\n{out.stderr[-2000:]}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload")
    ap.add_argument("func", help="a function of the workload module taking (n, *args), e.g. _raw")
    ap.add_argument("args", nargs="*", help="further arguments, as Python literals")
    ap.add_argument("--n1", type=int, default=2_000)
    ap.add_argument("--n2", type=int, default=12_000)
    opts = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)")
        return 2
    low = count(opts.workload, opts.func, opts.args, opts.n1)
    high = count(opts.workload, opts.func, opts.args, opts.n2)
    per = (high - low) / (opts.n2 - opts.n1)
    print(f"{opts.workload}.{opts.func}{tuple(opts.args)}: {per:,.0f} instructions per operation "
          f"(n {opts.n1:,} -> {opts.n2:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
