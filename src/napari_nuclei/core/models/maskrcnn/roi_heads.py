"""The ROI heads prediction builds: detectron2's standard heads, with the mask branch run on
a bounded number of detections at a time, and each detection's class probabilities kept.

Registered in detectron2's ``ROI_HEADS_REGISTRY`` and chosen by ``MODEL.ROI_HEADS.NAME`` in
the config built for prediction (:func:`use_chunked_mask_head`); training builds the
standard heads. Both have the same parameters, so checkpoints are the same for both.
"""

from __future__ import annotations

import torch
from detectron2.modeling import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers, fast_rcnn_inference
from detectron2.structures import Instances
from torchvision.ops import nms

# Detections per mask-head pass: the head's activations for 1000 nuclei at once take
# about 1 GB (256 channels at 28x28 each); in chunks they take a tenth of that.
MASK_HEAD_CHUNK = 100


class NucleusOutputLayers(FastRCNNOutputLayers):
    """The box predictor's layers, whose inference also gives each detection the
    probability of every nucleus class (``class_probs``) and, with several classes, one
    detection per nucleus.

    detectron2 keeps a proposal once per class scoring above the threshold (its NMS runs
    per class), so a nucleus the network hesitates about would come out twice, once per
    class. Nuclei do not lie on top of each other: with more than one class, detections
    are suppressed across classes too, the best class of each nucleus kept. The
    probabilities are the classes' share of the proposal's nucleus probability (each row
    sums to 1; a one-class model gives 1).
    """

    def inference(self, predictions, proposals):
        boxes = self.predict_boxes(predictions, proposals)
        scores = self.predict_probs(predictions, proposals)
        image_shapes = [x.image_size for x in proposals]
        results, kept = fast_rcnn_inference(
            boxes, scores, image_shapes, self.test_score_thresh, self.test_nms_thresh,
            self.test_topk_per_image)
        for index, (result, proposal_ids) in enumerate(zip(results, kept, strict=True)):
            foreground = scores[index][proposal_ids, :-1]
            result.class_probs = foreground / foreground.sum(dim=1, keepdim=True).clamp_min(
                torch.finfo(foreground.dtype).tiny)
            if self.num_classes > 1 and len(result):
                keep = nms(result.pred_boxes.tensor, result.scores, self.test_nms_thresh)
                results[index], kept[index] = result[keep], proposal_ids[keep]
        return results, kept


@ROI_HEADS_REGISTRY.register()
class ChunkedMaskROIHeads(StandardROIHeads):
    """``StandardROIHeads`` whose mask branch sees at most :attr:`mask_chunk` detections
    per pass at inference (the same masks with bounded memory), and whose box predictor
    is :class:`NucleusOutputLayers`. Training is unchanged."""

    mask_chunk = MASK_HEAD_CHUNK

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        parts = super()._init_box_head(cfg, input_shape)
        # Same parameters as detectron2's layers: a checkpoint loads into either.
        parts["box_predictor"] = NucleusOutputLayers(cfg, parts["box_head"].output_shape)
        return parts

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
