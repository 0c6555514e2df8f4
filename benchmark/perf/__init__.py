"""Measurements of speed: run with `bench perf ...`, never inside tests."""
