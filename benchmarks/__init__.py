"""Benchmark suite for the actors/supervisors runtime. Run ``python benchmarks/run.py --help``."""
