"""Measurement helpers shared by the benchmark scripts (not a benchmark itself)."""
