"""Benchmarks: they print figures; nothing here asserts timings."""
