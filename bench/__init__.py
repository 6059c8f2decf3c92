"""Benchmarks and experiments; run each as `python -m bench.<micro|experiments>.<name>` from the repo root."""
