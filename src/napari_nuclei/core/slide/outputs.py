"""The outputs of a slide: OME-Zarr labels, the nucleus table and QuPath GeoJSON.

Labels are written chunk by chunk as tiles finish (one chunk per tile core, each written
once, so parallel writers never share a chunk). Table rows and GeoJSON features are
written per tile into part files as tiles finish; at the end they are streamed, one tile
at a time, into ``nuclei.parquet`` (and ``nuclei.csv`` on request) and ``nuclei.geojson``
(optionally gzipped), so memory stays bounded by a tile whatever the slide size.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .measure import table_columns
from .ngff import (
    DEFAULT_NGFF,
    is_zarr_group,
    label_colours,
    ngff_version,
    update_ngff_attrs,
    zarr_format,
)

LABELS_NAME = "nuclei.ome.zarr"
TABLE_NAME = "nuclei.parquet"
CSV_NAME = "nuclei.csv"
GEOJSON_NAME = "nuclei.geojson"
MIN_PYRAMID_SIDE = 256
# NGFF 0.5 arrays name their dimensions (zarr v3 ``dimension_names``), as the axes do.
AXES = ("y", "x")
# Up to this many nuclei, the labels list a colour for each (NGFF ``image-label``
# ``colors``), which is what lets napari-ome-zarr open them visible (see ``finish``);
# beyond it the list (about 50 bytes a nucleus) would make the metadata too large to read
# quickly, and the labels open hidden there, in napari's own colours.
MAX_COLOURED_NUCLEI = 200_000


def prepare_labels_store(path: Path, ngff: str = DEFAULT_NGFF) -> None:
    """Create the labels group of a slide job in the zarr format of its NGFF version
    (``0.5``: zarr 3; ``0.4``: zarr 2), or check the one there (a job continued).

    Raises
    ------
    ValueError
        When the folder holds labels of the other version.
    """
    import zarr

    fmt = zarr_format(ngff)
    if is_zarr_group(path):
        found = ngff_version(zarr.open_group(str(path), mode="r"))
        if found != ngff:
            raise ValueError(f"{path} holds NGFF {found} labels, not {ngff}")
        return
    zarr.open_group(str(path), mode="a", zarr_format=fmt)


class LabelsStore:
    """A multiscale OME-Zarr (NGFF 0.5 or 0.4) label image of uint32 nucleus ids.

    Parameters
    ----------
    path : Path
        The ``.ome.zarr`` folder (created, or reopened to resume: its version is kept).
    height, width : int
        Size of the full-resolution labels (prediction pixels).
    chunk : int
        Chunk side: the tile core side, so each tile writes its own chunk.
    pixel_size : float
        Size of a label pixel in ``unit``.
    unit : str or None
        ``micrometer`` when the slide's pixel size is known.
    ngff : str, optional
        ``0.5`` or ``0.4`` for a new store (default: the version of the store there, made
        by :func:`prepare_labels_store`, else 0.5).
    """

    def __init__(self, path: Path, height: int, width: int, chunk: int,
                 pixel_size: float = 1.0, unit: str | None = None, ngff: str | None = None):
        import zarr

        self.path = Path(path)
        self.chunk = chunk
        self.pixel_size = pixel_size
        self.unit = unit
        if ngff is None and is_zarr_group(self.path):
            self.group = zarr.open_group(str(self.path), mode="r+")
        else:
            prepare_labels_store(self.path, ngff or DEFAULT_NGFF)
            self.group = zarr.open_group(str(self.path), mode="r+")
        self.ngff = ngff_version(self.group)
        if "s0" in self.group:
            self.base = self.group["s0"]
        else:
            self.base = self._create_level("s0", (height, width))

    def _create_level(self, name: str, shape: tuple[int, int]):
        if self.ngff == "0.5":
            layout = {"dimension_names": AXES}
        else:
            from numcodecs import Blosc

            # NGFF 0.4 asks for "/" between chunk indices; Bio-Formats' zarr reader
            # decodes blosc and zlib only, so the compressor is named rather than left to
            # zarr's default.
            layout = {"chunk_key_encoding": {"name": "v2", "separator": "/"},
                      "compressors": Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)}
        return self.group.create_array(name, shape=shape, chunks=(self.chunk, self.chunk),
                                       dtype="uint32", fill_value=0, overwrite=True,
                                       **layout)

    def write_block(self, top: int, left: int, block: np.ndarray) -> None:
        """Write a chunk-aligned block of labels (all-zero blocks are not stored)."""
        if block.any():
            self.base[top : top + block.shape[0], left : left + block.shape[1]] = block

    def finish(self) -> int:
        """Build the pyramid (nearest-neighbour halving, chunk by chunk) and write the NGFF
        metadata; returns the number of levels."""
        ids = _IdCollector(MAX_COLOURED_NUCLEI if self.ngff == "0.5" else 0)
        arrays, source = ["s0"], self.base
        while min(source.shape) // 2 >= MIN_PYRAMID_SIDE:
            name = f"s{len(arrays)}"
            shape = (-(-source.shape[0] // 2), -(-source.shape[1] // 2))
            target = self._create_level(name, shape)
            for y in range(0, shape[0], self.chunk):
                for x in range(0, shape[1], self.chunk):
                    if source is self.base:
                        # Level 0 is read whole here anyway (its chunks hold the pixels
                        # kept), so its ids are gathered on the way.
                        block = source[2 * y : 2 * (y + self.chunk),
                                       2 * x : 2 * (x + self.chunk)]
                        ids.add(block)
                        block = block[::2, ::2]
                    else:
                        block = source[2 * y : 2 * (y + self.chunk) : 2,
                                       2 * x : 2 * (x + self.chunk) : 2]
                    if block.any():
                        target[y : y + block.shape[0], x : x + block.shape[1]] = block
            arrays.append(name)
            source = target
        if len(arrays) == 1:
            for y in range(0, self.base.shape[0], self.chunk):
                for x in range(0, self.base.shape[1], self.chunk):
                    ids.add(self.base[y : y + self.chunk, x : x + self.chunk])
        self.write_metadata(len(arrays), ids.colours())
        return len(arrays)

    def write_metadata(self, levels: int, colours: list[dict] | None = None) -> None:
        """Write the NGFF metadata of ``levels`` pyramid levels, in the store's version.

        The group is at once the multiscales image of the ids and its own label image
        (``image-label``, whose ``source`` names the group itself: the slide is not in the
        store, and readers that follow ``source`` find no image to look for). With
        ``colours`` (NGFF 0.5), the labels also carry an ``omero`` channel that is shown:
        napari-ome-zarr opens a label image hidden unless its ``omero`` channel is
        ``active``, and then takes its colours from ``image-label`` only, so both go
        together. NGFF 0.4 validators require an ``omero`` window, which napari-ome-zarr
        would pass to napari's Labels layer as contrast limits it refuses: a 0.4 store
        carries neither, and opens hidden in napari's own colours.
        """
        axis = {"type": "space", **({"unit": self.unit} if self.unit else {})}
        multiscale = {
            "name": "nuclei",
            "axes": [{"name": "y", **axis}, {"name": "x", **axis}],
            "datasets": [{"path": f"s{i}", "coordinateTransformations": [
                {"type": "scale", "scale": [self.pixel_size * 2**i] * 2}]}
                for i in range(levels)],
        }
        if self.ngff == "0.4":
            multiscale["version"] = "0.4"
        image_label = {"version": self.ngff, "source": {"image": "."}}
        values = {"multiscales": [multiscale], "image-label": image_label}
        if colours:
            image_label["colors"] = colours
            values["omero"] = {"channels": [
                {"label": "labels", "color": "FFFFFF", "active": True}]}
        update_ngff_attrs(self.group, values)


class _IdCollector:
    """The nucleus ids of label blocks, up to a limit (past it, none are kept)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.ids: set[int] = set()

    def add(self, block: np.ndarray) -> None:
        if self.ids is None or not self.limit:
            return
        flat = np.asarray(block).ravel()
        if not flat.size:
            return
        # Runs along rows are long (a nucleus is tens of pixels wide): keep one pixel
        # per run before sorting.
        starts = np.empty(flat.size, bool)
        starts[0] = True
        np.not_equal(flat[1:], flat[:-1], out=starts[1:])
        found = np.unique(flat[starts])
        self.ids.update(found[found != 0].tolist())
        if len(self.ids) > self.limit:
            self.ids = None

    def colours(self) -> list[dict] | None:
        if self.ids is None or not self.limit or not self.ids:
            return None
        return label_colours(np.fromiter(self.ids, np.uint64, len(self.ids)))


def write_table_part(path: Path, columns: dict[str, np.ndarray], stain: str,
                     classes=None) -> Path:
    """Write one tile's table columns (from ``measure_nuclei``, and ``classify_columns``
    with ``classes``) as an Arrow IPC file (atomically; read back by
    :func:`assemble_table`)."""
    import pyarrow as pa

    table = pa.table([columns[name] for name in table_columns(stain, classes)],
                     schema=table_schema(stain, classes))
    with atomic_path(path, clean_stale=False) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    return path


def table_schema(stain: str, classes=None):
    """Column types of the nucleus table (with a model's ``classes``, its class names)."""
    import pyarrow as pa

    kinds = {"id": pa.uint32(), "class": pa.string()}
    return pa.schema([(name, kinds.get(name, pa.float64()))
                      for name in table_columns(stain, classes)])


def write_features_part(path: Path, lines: Iterable[str]) -> Path:
    """Write one tile's GeoJSON Feature lines (from ``feature_lines``), one per line
    (atomically)."""
    with atomic_path(path, clean_stale=False) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
    return path


def table_metadata(mpp: float | None, stain: str, model: str = "",
                   checkpoint: str = "", vectors=None) -> dict[bytes, bytes]:
    """The Parquet schema metadata of a nucleus table: what its numbers mean.

    One key, ``napari_nuclei``, holding JSON: the pixel size, the units of every kind of
    column, the stain columns' vectors (``vectors``, QuPath's "H&E default" unless
    given), the model and checkpoint, the tool's version.
    """
    import json

    from .measure import HE_BACKGROUND, HE_DEFAULT_VECTORS

    try:
        from importlib.metadata import version

        tool = version("napari-nuclei")
    except Exception:  # a source tree without installed metadata
        tool = "unknown"
    facts = {
        "mpp": mpp, "length_unit": "px (level 0) and µm", "area_unit": "px² and µm²",
        "coordinates": "level-0 pixels, origin at the top-left of the image",
        "stain": stain, "model": model, "checkpoint": checkpoint,
        "napari_nuclei_version": tool,
    }
    if stain == "he":
        hematoxylin, eosin = vectors or HE_DEFAULT_VECTORS
        facts["stain_vectors"] = {"hematoxylin": list(hematoxylin), "eosin": list(eosin),
                                  "background": HE_BACKGROUND,
                                  "optical_density": "log10(background / max(I, 1))"}
    return {b"napari_nuclei": json.dumps(facts).encode()}


def assemble_table(parts: list[Path], stain: str, path: Path, csv_path: Path | None,
                   metadata: dict[bytes, bytes] | None = None, classes=None) -> int:
    """Stream the table parts (in order) into one Parquet file (with ``metadata`` in its
    schema, :func:`table_metadata`), and a CSV when asked."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    schema = table_schema(stain, classes)
    if metadata:
        schema = schema.with_metadata(metadata)
    rows = 0
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        writer = stack.enter_context(pq.ParquetWriter(tmp, schema))
        csv_writer = None
        if csv_path is not None:
            csv_tmp = stack.enter_context(atomic_path(csv_path))
            csv_writer = stack.enter_context(pcsv.CSVWriter(csv_tmp, schema))
        for part in parts:
            with pa.memory_map(str(part)) as source:
                table = pa.ipc.open_file(source).read_all()
            rows += table.num_rows
            if table.num_rows:
                writer.write_table(table)
                if csv_writer is not None:
                    csv_writer.write_table(table)
    return rows


def assemble_geojson(parts: list[Path], path: Path, compress: bool) -> int:
    """Stream the feature parts into one FeatureCollection (gzipped when asked)."""
    count = 0
    with atomic_path(path) as tmp:
        opener = gzip.open if compress else open
        with opener(tmp, "wt", encoding="utf-8") as out:
            out.write('{"type":"FeatureCollection","features":[\n')
            for part in parts:
                with open(part, encoding="utf-8") as lines:
                    for line in lines:
                        if count:
                            out.write(",\n")
                        out.write(line.rstrip("\n"))
                        count += 1
            out.write("\n]}\n")
    return count
