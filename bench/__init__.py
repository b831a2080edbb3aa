"""Benchmarks: measure each capability on the shapes world."""
