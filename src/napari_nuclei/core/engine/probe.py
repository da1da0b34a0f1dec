"""The child side of the engine check: use torch, torchvision and detectron2 once.

Run by :mod:`.check` in a fresh interpreter (``python -c``), never imported by the
parent: a broken engine can raise anything on import, crash or hang, and none of that may
reach the program that asked. Each stage and the verdict are printed on stdout as JSON
after a marker, so that whatever the libraries print themselves is told apart.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

MARKER = "@napari-nuclei-engine-check@ "
# The smallest image the tiny network takes through all its stages.
IMAGE_SIDE = 64
# Few proposals and detections: enough to run NMS, ROIAlign and the mask head, little
# enough to keep the forward pass well under a second on a laptop core.
PROPOSALS = 50
DETECTIONS = 4


class EmptyPackage(ImportError):
    """``detectron2`` imports, but from a folder without an ``__init__.py``."""


class OtherDetectron2(ImportError):
    """The interpreter imported a detectron2 other than the one the parent found."""


def _say(**fields) -> None:
    print(MARKER + json.dumps(fields), flush=True)


def _frames(exc: BaseException) -> list[list]:
    """Where the error was raised, innermost last: ``[file, line]`` pairs."""
    frames = [[f.filename, f.lineno] for f in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append([exc.filename, exc.lineno])
    return frames[-40:]


def _use_expected(expected: Path | None) -> None:
    """Make ``import detectron2`` find the package the parent found (it may sit on a path
    the parent added at run time, such as a freshly installed engine folder)."""
    import importlib.util

    if expected is None:
        return
    spec = importlib.util.find_spec("detectron2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not any(Path(p).resolve() == expected for p in locations):
        sys.path.insert(0, str(expected.parent))
        importlib.invalidate_caches()


def _tiny_model():
    """The project's ``tiny`` preset as a detectron2 model on CPU, in eval mode."""
    import torch
    from detectron2.modeling import build_model

    from napari_nuclei.core.models.maskrcnn.config import build_config
    from napari_nuclei.core.models.maskrcnn.presets import preset_settings

    settings = preset_settings("tiny").replace(device="cpu")
    cfg = build_config(settings, output_dir="", group_norm=True)
    # Random weights give every box a score near one half: a zero threshold keeps some
    # detections, so the mask head runs too.
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 4 * PROPOSALS
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = PROPOSALS
    cfg.TEST.DETECTIONS_PER_IMAGE = DETECTIONS
    torch.manual_seed(0)
    return build_model(cfg).eval()


def run(expected: Path | None) -> dict:
    """Import the engine, build a tiny Mask R-CNN and run it once; return the verdict."""
    versions: dict[str, str] = {}
    stage = "import torch"
    start = time.perf_counter()
    try:
        _say(stage=stage)
        import torch

        versions["torch"] = torch.__version__
        # One thread: the check shares the machine with whatever the user runs.
        torch.set_num_threads(1)
        stage = "import torchvision"
        _say(stage=stage)
        import torchvision

        versions["torchvision"] = torchvision.__version__
        stage = "import detectron2"
        _say(stage=stage)
        _use_expected(expected)
        import detectron2

        if getattr(detectron2, "__file__", None) is None:
            raise EmptyPackage("no __init__.py", name="detectron2")
        found = Path(detectron2.__file__).resolve().parent
        if not any(p.suffix == ".py" or (p / "__init__.py").is_file()
                   for p in found.iterdir() if p.name != "__init__.py"):
            raise EmptyPackage("nothing but an __init__.py", name="detectron2")
        if expected is not None and found != expected:
            raise OtherDetectron2(f"imported {found}", name="detectron2")
        versions["detectron2"] = str(getattr(detectron2, "__version__", "unknown"))
        import detectron2.modeling  # noqa: F401  (an empty or partial copy fails here)

        stage = "build the model"
        _say(stage=stage)
        model = _tiny_model()
        stage = "run the model"
        _say(stage=stage)
        image = torch.zeros(3, IMAGE_SIDE, IMAGE_SIDE)
        with torch.no_grad():
            outputs = model([{"image": image, "height": IMAGE_SIDE, "width": IMAGE_SIDE}])
        instances = outputs[0]["instances"]
        if len(instances) and tuple(instances.pred_masks.shape[1:]) != (IMAGE_SIDE,) * 2:
            raise ValueError(f"masks of shape {tuple(instances.pred_masks.shape)}")
    except BaseException as exc:  # reported to the parent, which words the fix
        # A syntax error's text repeats the file and line, which are reported apart.
        text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
        message = text.strip().splitlines()
        return {"ok": False, "stage": stage, "type": type(exc).__name__,
                "message": message[0][:400] if message else "", "name":
                getattr(exc, "name", None), "frames": _frames(exc), "versions": versions,
                "seconds": time.perf_counter() - start}
    return {"ok": True, "versions": versions, "detections": len(instances),
            "seconds": time.perf_counter() - start}


def main(argv: list[str]) -> int:
    """Run the check for the detectron2 folder in ``argv[0]`` (optional); print it."""
    import warnings

    # Deprecation notes of torch and detectron2 are no verdict; keep stderr for crashes.
    warnings.simplefilter("ignore")
    expected = Path(argv[0]).resolve() if argv and argv[0] else None
    verdict = run(expected)
    _say(**verdict)
    return 0 if verdict["ok"] else 1
