"""The one error of bad input to a transfer, light enough for the emulators and the planner to share."""

from __future__ import annotations


class SourceError(ValueError):
    """The source cannot be uploaded as it is; the message names it, the value and the limit."""
