"""Latent-space planners (torch only): objectives, CEM, MPPI, gradient MPC."""
