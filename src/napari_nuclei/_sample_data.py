"""napari sample data: the bundled fluorescence tile with its nuclei, and the H&E tile."""

from __future__ import annotations

from ._layers import record_layer_data
from .core.dataset import open_dataset
from .core.sample import sample_data_dir


def fluorescence_sample() -> list[tuple]:
    """A 256x256 fluorescence tile of the 2018 Data Science Bowl and its labelled nuclei."""
    dataset = open_dataset(sample_data_dir() / "train" / "fluo_r0c0")
    return record_layer_data(dataset.records[0], annotated=True)


def he_tile_sample() -> list[tuple]:
    """A real 1000x1000 H&E tile (no labels), as found in histology test sets."""
    dataset = open_dataset(sample_data_dir() / "test" / "he_tile_1000.png")
    return record_layer_data(dataset.records[0], annotated=False)
