"""Errors of the harmonizer app (printed as one line by the CLI, exit code 2)."""

from __future__ import annotations

from stripes.errors import DataError


class HarmonizeError(DataError):
    """A user input the harmonizer cannot use: the message names the file and the problem."""
