"""Benchmarks, run on demand with ``passerelle bench NAME``; each prints its figures as JSON."""
