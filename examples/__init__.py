"""Runnable examples from the repo root (`python -m examples.<name>`); not shipped with the package."""
