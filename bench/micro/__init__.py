"""Micro-benchmarks: the time and throughput of one part (codecs, MoE, planner, node, data, training)."""
