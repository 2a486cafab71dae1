"""The benchmark of amiflow (`make bench`): see bench/run.py and BENCHMARKS.md."""
