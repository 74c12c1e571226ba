"""One module per workload; see benchmarks/_common.py for the module contract."""

#: Order in which run.py runs (and prints) the workloads.
ALL = ["cast", "call", "start", "stop", "restart", "tree", "jobs", "pg", "dashboard", "jobs_claim", "jobs_search"]
