"""The napari dock widget: a thin Qt layer over the Qt-free core."""

import os
import sys

# torchvision.ops imports torch._dynamo, which imports Triton when it is installed (CUDA
# builds of torch bring it). Triton's bundled LLVM clashes with the LLVM that Mesa's
# OpenGL drivers load into napari, and the process crashes at that import. Nothing here
# uses Triton, so the widget hides it unless Triton is already loaded (then it is safe)
# or NAPARI_NUCLEI_ALLOW_TRITON=1 is set.
if "triton" not in sys.modules and os.environ.get("NAPARI_NUCLEI_ALLOW_TRITON") != "1":
    sys.modules["triton"] = None
