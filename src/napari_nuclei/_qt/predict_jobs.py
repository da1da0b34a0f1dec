"""Worker jobs of the Predict section (Qt-free generators over the core)."""

from __future__ import annotations

from pathlib import Path

# Predictions are kept down to this score, so the threshold slider can show more or fewer
# nuclei without running the network again.
LOWEST_SCORE = 0.05


class ModelCache:
    """Keeps the last loaded model: loading X101 weights takes seconds."""

    def __init__(self):
        self.key = None
        self.model = None

    def get(self, run_dir: Path | None, checkpoint: Path | None):
        from ..core.predict.model import load_model

        key = (str(run_dir), str(checkpoint))
        if key != self.key:
            source = run_dir if run_dir is not None else checkpoint
            self.model = load_model(source, checkpoint=checkpoint if run_dir else None,
                                    score_thresh=LOWEST_SCORE)
            self.key = key
        return self.model


def predict_images(cache: ModelCache, run_dir, checkpoint, images):
    """Predict ``(name, pixels, path)`` images one by one; yields ``(name, path, pixels,
    prediction)``. Closing the generator stops before the next image."""
    from ..core.predict.predictor import predict_image

    model = cache.get(run_dir, checkpoint)
    for name, pixels, path in images:
        if pixels is None:
            from ..core.image_io import read_image

            pixels = read_image(path)
        yield name, path, pixels, predict_image(model, pixels)
