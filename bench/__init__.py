"""Benchmarks: one script per figure, run as `python -m bench.<name>` (see RESULTS.md)."""
