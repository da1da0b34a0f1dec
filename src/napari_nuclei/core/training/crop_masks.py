"""Compact ground-truth masks for Mask R-CNN training on dense nuclei.

detectron2's ``BitMasks`` holds one full-frame bitmap per nucleus after augmentation
(700 nuclei on a 1000x1000 image: 700 MB per sample). Mask R-CNN only ever asks the masks
for ``crop_and_resize``: each mask cropped to a proposal box and resampled to 28x28. So
:class:`CropMasks` keeps each nucleus as the small crop around it in the *original*
image, plus the geometric transform (resize and flips) the sample went through, and
answers ``crop_and_resize`` by mapping the proposal boxes back through that transform.
No mask is ever resized or flipped, and memory follows the nuclei's area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import roi_align


@dataclass(frozen=True)
class AxisMaps:
    """Per-axis affine map from original to augmented pixel coordinates: ``x' = a*x + b``."""

    ax: float = 1.0
    bx: float = 0.0
    ay: float = 1.0
    by: float = 0.0

    def then(self, ax: float, bx: float, ay: float, by: float) -> AxisMaps:
        """This map followed by another one."""
        return AxisMaps(ax * self.ax, ax * self.bx + bx, ay * self.ay, ay * self.by + by)


def axis_maps_of(transforms) -> AxisMaps:
    """The affine map of a detectron2 ``TransformList`` of resizes, flips and no-ops.

    Raises
    ------
    ValueError
        For a transform that is not axis-aligned scaling or flipping (crop masks could
        not follow it exactly).
    """
    from detectron2.data import transforms as T
    from fvcore.transforms.transform import HFlipTransform, NoOpTransform, VFlipTransform

    maps = AxisMaps()
    for transform in getattr(transforms, "transforms", [transforms]):
        if isinstance(transform, NoOpTransform):
            continue
        if isinstance(transform, T.ResizeTransform):
            maps = maps.then(transform.new_w / transform.w, 0.0,
                             transform.new_h / transform.h, 0.0)
        elif isinstance(transform, HFlipTransform):
            maps = maps.then(-1.0, float(transform.width), 1.0, 0.0)
        elif isinstance(transform, VFlipTransform):
            maps = maps.then(1.0, 0.0, -1.0, float(transform.height))
        else:
            raise ValueError(f"crop masks cannot follow {type(transform).__name__}")
    return maps


def crops_from_masks(masks, height: int, width: int):
    """Cut each full-frame mask to its box plus a one-pixel margin (clipped to the frame).

    The margin keeps ``roi_align``'s bilinear sampling identical to sampling the full
    frame: inside the frame a crop edge then always borders background, and at the frame
    edge the crop edge is the frame edge, where ``roi_align`` clamps the same way.

    Parameters
    ----------
    masks : iterable of numpy.ndarray
        ``(height, width)`` boolean masks, one per nucleus (none empty).
    height, width : int
        Frame size.

    Returns
    -------
    crops : list of torch.Tensor
        uint8 crops.
    origins : numpy.ndarray
        ``(N, 2)`` float, ``(x0, y0)`` of each crop in the frame.
    """
    crops, origins = [], []
    for mask in masks:
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, height)
        left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, width)
        crops.append(torch.from_numpy(np.ascontiguousarray(mask[top:bottom, left:right],
                                                           dtype=np.uint8)))
        origins.append((left, top))
    return crops, np.asarray(origins, dtype=np.float32).reshape(-1, 2)


class CropMasks:
    """Nucleus masks of one augmented sample, stored as original-resolution crops.

    Supports what detectron2's training path uses of ``BitMasks``: ``len``, indexing by
    int, slice, boolean or index tensor, ``to``, ``nonempty`` and ``crop_and_resize``.

    Parameters
    ----------
    crops : list of torch.Tensor
        uint8 crops from :func:`crops_from_masks` (shared, never copied by indexing).
    origins : numpy.ndarray or torch.Tensor
        ``(len(crops), 2)`` crop origins ``(x0, y0)`` in the original frame.
    maps : AxisMaps
        Original-to-augmented coordinate map of the sample.
    index : torch.Tensor, optional
        Which crops this object holds, in order; all by default.
    """

    def __init__(self, crops, origins, maps: AxisMaps, index: torch.Tensor | None = None):
        self.crops = crops
        self.origins = torch.as_tensor(origins, dtype=torch.float32).reshape(-1, 2)
        self.maps = maps
        self.index = torch.arange(len(crops)) if index is None else index.to(torch.long)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item) -> CropMasks:
        if isinstance(item, int):
            item = [item]
        if isinstance(item, torch.Tensor):
            item = item.cpu()
        return CropMasks(self.crops, self.origins, self.maps, self.index[item].reshape(-1))

    def to(self, *args, **kwargs) -> CropMasks:
        """Masks live on the CPU; targets are moved to the boxes' device when computed."""
        return self

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def nonempty(self) -> torch.Tensor:
        """All True: empty masks are dropped when crops are made."""
        return torch.ones(len(self), dtype=torch.bool)

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Mask targets: each mask cropped to its box and resampled to a square grid.

        Parameters
        ----------
        boxes : torch.Tensor
            ``(N, 4)`` XYXY boxes in augmented-image coordinates, one per mask.
        mask_size : int
            Side of the output grid (28 for the standard mask head).

        Returns
        -------
        torch.Tensor
            ``(N, mask_size, mask_size)`` bool on ``boxes``' device, as
            ``BitMasks.crop_and_resize`` returns.
        """
        if len(boxes) != len(self):
            raise ValueError(f"{len(boxes)} boxes for {len(self)} masks")
        out = torch.zeros((len(self), mask_size, mask_size), dtype=torch.bool)
        if len(self) == 0:
            return out.to(boxes.device)
        m = self.maps
        b = boxes.detach().to("cpu", torch.float32)
        xs = (b[:, [0, 2]] - m.bx) / m.ax
        ys = (b[:, [1, 3]] - m.by) / m.ay
        xs, _ = xs.sort(dim=1)
        ys, _ = ys.sort(dim=1)
        origins = self.origins[self.index]
        rois = torch.stack(
            [
                torch.zeros(len(self)),
                xs[:, 0] - origins[:, 0],
                ys[:, 0] - origins[:, 1],
                xs[:, 1] - origins[:, 0],
                ys[:, 1] - origins[:, 1],
            ],
            dim=1,
        )
        for crop_id in torch.unique(self.index).tolist():
            rows = torch.nonzero(self.index == crop_id).flatten()
            crop = self.crops[crop_id].to(torch.float32)[None, None]
            sampled = roi_align(crop, rois[rows], (mask_size, mask_size), 1.0, 0, True)
            out[rows] = sampled[:, 0] >= 0.5
        if m.ax < 0:
            out = out.flip(2)
        if m.ay < 0:
            out = out.flip(1)
        return out.to(boxes.device)
