"""Optional dependencies: which extra installs which module, and the one-line message when one is missing.

The core (``stripes.pe``, ``stripes.attention``, ``stripes.models``, ``stripes.config``, ``stripes.errors``)
needs only torch and numpy; data, experiments, the CLI and the harmonizer need the ``toolkit`` extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# top-level module -> the extra of pyproject.toml that installs it
EXTRAS = {
    "scipy": "toolkit",
    "symusic": "toolkit",
    "tqdm": "toolkit",
    "matplotlib": "toolkit",
    "music21": "leadsheet",
    "submitit": "cluster",
    "tensorboard": "tensorboard",
    "tinysoundfont": "audio",
    "pretty_midi": "audio",
    "gradio": "app",
    "gradio_client": "app",
}


class MissingExtraError(ModuleNotFoundError):
    """A module of an optional extra is not installed (``name`` is the module, ``extra`` the extra)."""

    def __init__(self, module: str, extra: str) -> None:
        msg = f"needs the {extra} extra: pip install 'stripes[{extra}]' (missing module '{module}')"
        super().__init__(msg, name=module)
        self.extra = extra


def missing_extra(exc: BaseException) -> tuple[str, str] | None:
    """``(module, extra)`` when ``exc`` is a ModuleNotFoundError for a module that an extra installs."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    extra = getattr(exc, "extra", None) or EXTRAS.get(top)
    return (top, extra) if extra else None


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if (exc.name or "").split(".")[0] != top:
            raise  # something else is missing: not ours to explain
        raise MissingExtraError(top, extra or EXTRAS.get(top, "toolkit")) from None
