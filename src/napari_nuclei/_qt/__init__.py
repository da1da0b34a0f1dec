"""The napari dock widget: a thin Qt layer over the session model and the core.

Training and prediction run in child processes (see
:mod:`napari_nuclei.core.child_job`), so napari's process never imports torch.
"""
