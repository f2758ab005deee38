"""Errors that the user should see as a clear message (the CLI prints them without a traceback)."""

from __future__ import annotations


class StripesError(Exception):
    """Base class of user-facing errors."""


class DataError(StripesError):
    """Missing, malformed or inconsistent input data. The message names the file (and line)."""


class ConfigError(StripesError):
    """An invalid configuration: unknown key, wrong type, bad value."""


class TrainingError(StripesError):
    """A training run cannot go on (for example a NaN or inf loss)."""


class BudgetExceeded(StripesError):
    """A time budget ran out: the run stopped cleanly after a checkpoint and resumes on the next call."""


class CheckpointError(TrainingError):
    """A checkpoint that is missing, corrupt, of an old format, or would need code to be unpickled."""


class ModelError(StripesError):
    """Inputs of the wrong shape or type for a model or a positional encoding."""
