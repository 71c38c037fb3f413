"""Benchmark scripts (print medians and JSON); never timed unit tests."""
