"""World model (torch only): encoders, MoE predictor, heads, losses, checkpoints."""
