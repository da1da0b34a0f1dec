"""The ROI heads prediction builds: detectron2's standard heads, with the mask branch run on
a bounded number of detections at a time.

Registered in detectron2's ``ROI_HEADS_REGISTRY`` and chosen by ``MODEL.ROI_HEADS.NAME`` in
the config built for prediction (:func:`use_chunked_mask_head`); training builds the
standard heads. Both have the same parameters, so checkpoints are the same for both.
"""

from __future__ import annotations

from detectron2.modeling import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.structures import Instances

# Detections per mask-head pass: the head's activations for 1000 nuclei at once take
# about 1 GB (256 channels at 28x28 each); in chunks they take a tenth of that.
MASK_HEAD_CHUNK = 100


@ROI_HEADS_REGISTRY.register()
class ChunkedMaskROIHeads(StandardROIHeads):
    """``StandardROIHeads`` whose mask branch sees at most :attr:`mask_chunk` detections
    per pass at inference: the same masks with bounded memory. Training is unchanged."""

    mask_chunk = MASK_HEAD_CHUNK

    def _forward_mask(self, features, instances):
        chunk = self.mask_chunk
        whole = super()._forward_mask
        if self.training or all(len(i) <= chunk for i in instances):
            return whole(features, instances)
        results = []
        for image, per_image in enumerate(instances):
            # The features of this image only (a batch holds several).
            own = {name: f[image : image + 1] for name, f in features.items()}
            parts = [whole(own, [per_image[start : start + chunk]])[0]
                     for start in range(0, len(per_image), chunk)]
            results.append(Instances.cat(parts) if parts else per_image)
        return results


def use_chunked_mask_head(cfg) -> None:
    """Select :class:`ChunkedMaskROIHeads` in a (defrosted) config that builds the standard
    ROI heads; other heads are left as they are."""
    if cfg.MODEL.ROI_HEADS.NAME == StandardROIHeads.__name__:
        cfg.MODEL.ROI_HEADS.NAME = ChunkedMaskROIHeads.__name__
