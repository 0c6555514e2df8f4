"""Metrics: each registered once with its spec beside the code computing it (evaluate.py, registry.py)."""
