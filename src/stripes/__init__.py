"""stripes: structure-informed positional encodings in efficient transformers for symbolic music."""

__version__ = "0.1.0"
