"""Slide jobs with the stand-in model, for the dock's child process in tests."""

from slide_helpers import BlobModel

from napari_nuclei.core.slide.region_job import predict_region_with


def predict_region_with_blobs(model_path, slide, out_dir, region=None, checkpoint=None):
    """The dock's region job with the blob model instead of a trained run."""
    return (yield from predict_region_with(BlobModel(), slide, out_dir, region))


class SlowBlobModel(BlobModel):
    """The blob model taking its time over each tile, so that a test can stop it."""

    def infer(self, bgr, resize=True):
        import time

        time.sleep(0.3)
        return super().infer(bgr, resize)


def predict_region_slowly(model_path, slide, out_dir, region=None, checkpoint=None):
    """The dock's region job with the slow blob model."""
    return (yield from predict_region_with(SlowBlobModel(), slide, out_dir, region))
