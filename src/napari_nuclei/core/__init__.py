"""Qt-free core of napari-nuclei: datasets, COCO/RLE conversion, jobs.

Nothing in this package imports Qt or napari, so scripts, the command line and tests
can use it without a viewer.
"""
