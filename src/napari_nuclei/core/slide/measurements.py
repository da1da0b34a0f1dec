"""A predicted slide's measurements: one nucleus' row, the table as CSV, the GeoJSON for
QuPath. Everything streams (bounded memory whatever the slide size) and is written under
a temporary name first, so an interrupted export leaves no half-written file.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from ..atomic import atomic_path
from .edits import open_output


def nucleus_row(out_dir: str | Path, nucleus_id: int) -> dict | None:
    """The table row of one nucleus of a finished output (None when it has none)."""
    rows = open_output(out_dir).rows_of([int(nucleus_id)])
    return rows[0] if rows else None


def export_table_csv(out_dir: str | Path, dest: str | Path) -> int:
    """Write an output's nucleus table as CSV, batch by batch; returns the row count."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    output = open_output(out_dir)
    source = pq.ParquetFile(output.table_path)
    rows = 0
    with atomic_path(Path(dest)) as tmp, pcsv.CSVWriter(tmp, source.schema_arrow) as writer:
        for batch in source.iter_batches():
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def export_geojson(out_dir: str | Path, dest: str | Path) -> Path:
    """Write an output's nuclei as a plain GeoJSON FeatureCollection (QuPath's *File >
    Import objects* reads it), uncompressing a gzipped one on the way."""
    output = open_output(out_dir)
    source = output.geojson_path
    if source is None:
        from ..errors import InputError

        raise InputError(output.out_dir, "holds no GeoJSON (predicted without it)")
    opener = gzip.open if source.suffix == ".gz" else open
    with atomic_path(Path(dest)) as tmp, opener(source, "rb") as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return Path(dest)
