"""The one exception every codec raises on malformed input."""

from __future__ import annotations


class CodecError(ValueError):
    """A message could not be decoded/encoded; the text names the field and the values."""
