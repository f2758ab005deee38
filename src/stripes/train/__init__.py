"""Training: :func:`train` (loop, checkpoints, resume, DDP) and :func:`load_run`."""

from stripes.train.loop import TrainHooks, load_run, train, validate

__all__ = ["TrainHooks", "load_run", "train", "validate"]
