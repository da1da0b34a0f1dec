"""Whole-slide images: reading, tissue detection, streamed prediction and its outputs."""
