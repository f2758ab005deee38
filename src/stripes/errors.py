"""One family of user-facing errors (the CLI prints them without a traceback).

Every error stripes raises on purpose is a :class:`StripesError`. Those about a bad value are also a
``ValueError`` (configs, shapes, non-finite inputs) and those about a wrong type also a ``TypeError``, so
``except ValueError`` works as Python users expect:

- :class:`ConfigError` (``ValueError``): an invalid configuration or constructor argument (unknown key or
  option, wrong size, PE and layer that do not fit together).
- :class:`ModelError` (``ValueError``): tensors of the wrong shape or with bad values given to a PE, an
  attention function, a layer or a model; :class:`ModelTypeError` (also ``TypeError``) for a wrong type.
- :class:`DataError`: missing, malformed or inconsistent input data; the message names the file.
- :class:`TrainingError`, :class:`CheckpointError`, :class:`BudgetExceeded`: training runs.
"""

from __future__ import annotations


class StripesError(Exception):
    """Base class of user-facing errors."""


class DataError(StripesError):
    """Missing, malformed or inconsistent input data. The message names the file (and line)."""


class ConfigError(StripesError, ValueError):
    """An invalid configuration: unknown key, wrong type, bad value, parts that do not fit together."""


class TrainingError(StripesError):
    """A training run cannot go on (for example a NaN or inf loss)."""


class BudgetExceeded(StripesError):
    """A time budget ran out: the run stopped cleanly after a checkpoint and resumes on the next call."""


class CheckpointError(TrainingError):
    """A checkpoint that is missing, corrupt, of an old format, or would need code to be unpickled."""


class ModelError(StripesError, ValueError):
    """Inputs of the wrong shape or with bad values for a PE, an attention function, a layer or a model."""


class ModelTypeError(ModelError, TypeError):
    """Inputs of the wrong type (not a tensor, integer where floats are needed...)."""
