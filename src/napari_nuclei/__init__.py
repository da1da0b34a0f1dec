"""napari-nuclei: nuclei instance segmentation with Detectron2 Mask R-CNN in napari."""

__version__ = "0.1.0"
