"""Models: the melody-harmonization transformer (:class:`Harmonizer`)."""

from stripes.models.harmonizer import EncoderBlock, Harmonizer, build_model

__all__ = ["EncoderBlock", "Harmonizer", "build_model"]
