"""Experiments: what the trained models achieve against the published anchors (planning, probing, ablations)."""
