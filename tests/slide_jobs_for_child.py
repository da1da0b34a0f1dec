"""Slide jobs with the stand-in model, for the dock's child process in tests."""

from slide_helpers import BlobModel

from napari_nuclei.core.slide.region_job import predict_region_with


def predict_region_with_blobs(model_path, slide, out_dir, region=None, checkpoint=None):
    """The dock's region job with the blob model instead of a trained run."""
    return (yield from predict_region_with(BlobModel(), slide, out_dir, region))
