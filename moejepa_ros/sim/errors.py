"""Errors shared by the simulators."""


class SimUnavailableError(RuntimeError):
    """A simulator's runtime (package, GPU, display backend) is missing; the message says how to get it."""
