"""A finished slide output opened for corrections, and its journal of write-backs.

A write-back touches three outputs (the OME-Zarr labels, the nucleus table, the
GeoJSON), which cannot be replaced in one step. So everything it will write is first
saved as one pending edit (``edits/pending/``, renamed into place when complete), then
applied; applying is idempotent, and a pending edit left by a stopped process is applied
the next time the folder is opened. Each applied edit leaves a line in ``edits/log/``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_json_atomic
from ..errors import InputError
from ..validate import load_arrays, load_json, parse_json_line
from .job import COMPLETE_NAME, JOB, PLAN_NAME
from .ngff import label_colours, ngff_attrs, ngff_multiscales, update_ngff_attrs
from .output_lock import hold_output
from .outputs import (
    CSV_NAME,
    GEOJSON_NAME,
    LABELS_NAME,
    TABLE_NAME,
    assemble_geojson,
    assemble_table,
    table_metadata,
    table_schema,
    write_features_part,
    write_table_part,
)
from .plan import SlidePlan

EDITS = "edits"
PENDING = "pending"
LOG = "log"
_FEATURE_ID = re.compile(r'"measurements":\{"id":(\d+)[,}]')


@dataclass
class EditPlan:
    """Everything one write-back writes.

    Attributes
    ----------
    top, left : int
        Window position in label pixels.
    labels : numpy.ndarray
        The window's new labels.
    drop_ids : list of int
        Nuclei whose table rows and features are removed (removed and changed ones).
    columns : dict of numpy.ndarray
        New table columns (changed and added nuclei, from ``measure_nuclei``).
    features : list of str
        Their GeoJSON Feature lines.
    summary : dict
        Counts and region, for the log.
    """

    top: int
    left: int
    labels: np.ndarray
    drop_ids: list[int]
    columns: dict[str, np.ndarray]
    features: list[str]
    summary: dict


class SlideOutput:
    """A finished ``predict-slide`` output folder.

    Parameters
    ----------
    out_dir : Path
    plan : SlidePlan
    """

    def __init__(self, out_dir: Path, plan: SlidePlan):
        import zarr

        self.out_dir, self.plan = out_dir, plan
        self.labels_path = out_dir / LABELS_NAME
        self.table_path = out_dir / TABLE_NAME
        group = zarr.open_group(str(self.labels_path), mode="r+")
        multiscales = ngff_multiscales(group)
        if not multiscales:
            raise InputError(self.labels_path, "has no multiscales metadata: it is not "
                             "the labels of a finished predict-slide job")
        self.levels = [group[d["path"]] for d in multiscales[0]["datasets"]]

    @property
    def edits_dir(self) -> Path:
        return self.out_dir / EDITS

    @property
    def csv_path(self) -> Path | None:
        path = self.out_dir / CSV_NAME
        return path if path.is_file() else None

    @property
    def geojson_path(self) -> Path | None:
        for name in (GEOJSON_NAME, GEOJSON_NAME + ".gz"):
            if (self.out_dir / name).is_file():
                return self.out_dir / name
        return None

    def read_labels(self, top: int, left: int, bottom: int, right: int) -> np.ndarray:
        """Level-0 labels of a rectangle (label pixels)."""
        return np.asarray(self.levels[0][top:bottom, left:right], np.uint32)

    def max_id(self) -> int:
        """The largest nucleus id in the table."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        ids = pq.read_table(self.table_path, columns=["id"])["id"]
        return int(pc.max(ids).as_py() or 0) if len(ids) else 0

    def rows_of(self, ids) -> list[dict]:
        """Table rows of some nuclei."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        ids = list(ids)
        if not ids:
            return []
        table = ds.dataset(self.table_path).to_table(
            filter=pc.field("id").isin(pa.array(ids, pa.uint32())))
        return table.to_pylist()

    def journal(self, edit: EditPlan) -> Path:
        """Save an edit as pending (all of it or nothing)."""
        self.edits_dir.mkdir(exist_ok=True)
        staging = self.edits_dir / f".{PENDING}.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        np.save(staging / "labels.npy", edit.labels, allow_pickle=False)
        write_table_part(staging / "rows.arrow", edit.columns, self.plan.stain,
                         self.plan.class_set)
        write_features_part(staging / "features.geojsonl", edit.features)
        write_json_atomic(staging / "edit.json", {
            "top": edit.top, "left": edit.left, "drop_ids": edit.drop_ids,
            "keep_ids": edit.columns["id"].tolist(), "summary": edit.summary,
            "number": len(list((self.edits_dir / LOG).glob("*.json"))) + 1})
        staging.rename(self.edits_dir / PENDING)
        return self.edits_dir / PENDING


def open_output(out_dir: str | Path) -> SlideOutput:
    """Open a finished slide output for corrections (completing a stopped write-back).

    Raises
    ------
    InputError
        When the folder is not a finished ``predict-slide`` output.
    """
    out_dir = Path(out_dir).expanduser().resolve()
    plan_path = out_dir / JOB / PLAN_NAME
    if not plan_path.is_file():
        raise InputError(out_dir, "is not a predict-slide output folder (no "
                         f"{JOB}/{PLAN_NAME})")
    if not (out_dir / JOB / COMPLETE_NAME).is_file():
        raise InputError(out_dir, "holds a slide job that is not finished: run predict-slide "
                         "again to finish it before correcting")
    try:
        plan = SlidePlan.from_json(load_json(plan_path))
    except (InputError, ValueError, KeyError, TypeError):
        raise InputError(plan_path, "cannot be read as a slide job plan") from None
    output = SlideOutput(out_dir, plan)
    if (output.edits_dir / PENDING).is_dir():
        with hold_output(out_dir):  # another writer may be applying it right now
            apply_pending(output)
    return output


def apply_pending(output: SlideOutput) -> bool:
    """Apply the pending edit, if any; returns whether there was one."""
    pending = output.edits_dir / PENDING
    if not pending.is_dir():
        return False
    edit = load_json(pending / "edit.json")
    labels = load_arrays(pending / "labels.npy")[""]
    _write_labels(output, edit["top"], edit["left"], labels)
    _add_colours(output, labels)
    replaced = set(edit["drop_ids"]) | set(edit["keep_ids"])
    _rewrite_table(output, replaced, pending)
    if output.geojson_path is not None:
        _rewrite_geojson(output, replaced, pending)
    write_json_atomic(output.edits_dir / LOG / f"{edit['number']:06d}.json",
                      {"top": edit["top"], "left": edit["left"], **edit["summary"],
                       "removed_or_changed_ids": edit["drop_ids"],
                       "written_ids": edit["keep_ids"]})
    shutil.rmtree(pending)
    return True


def _write_labels(output: SlideOutput, top: int, left: int, labels: np.ndarray) -> None:
    """Level 0 and every pyramid level over the window (level k holds level 0's pixel
    ``(y * 2**k, x * 2**k)``: nearest-neighbour halving, as the engine builds it)."""
    height, width = labels.shape
    output.levels[0][top : top + height, left : left + width] = labels
    for k, level in enumerate(output.levels[1:], start=1):
        step = 2**k
        y0, x0 = -(-top // step), -(-left // step)
        y1 = min(level.shape[0], -(-(top + height) // step))
        x1 = min(level.shape[1], -(-(left + width) // step))
        if y1 <= y0 or x1 <= x0:
            continue
        rows = np.arange(y0, y1) * step - top
        cols = np.arange(x0, x1) * step - left
        level[y0:y1, x0:x1] = labels[rows[:, None], cols[None, :]]


def _add_colours(output: SlideOutput, labels: np.ndarray) -> None:
    """List colours for the window's new nuclei where the labels list colours (NGFF 0.5
    labels of fewer nuclei than :data:`~.outputs.MAX_COLOURED_NUCLEI`): napari-ome-zarr
    shows only the nuclei listed. The metadata keeps the store's NGFF version; colours of
    nuclei removed are left (they colour nothing), so applying twice changes nothing."""
    import zarr

    group = zarr.open_group(str(output.labels_path), mode="r+")  # as written now
    image_label = ngff_attrs(group).get("image-label")
    if not isinstance(image_label, dict) or not image_label.get("colors"):
        return
    listed = {c.get("label-value") for c in image_label["colors"]}
    new = [i for i in np.unique(labels).tolist() if i and i not in listed]
    if new:
        colours = image_label["colors"] + label_colours(np.asarray(new))[1:]
        update_ngff_attrs(group, {"image-label": {**image_label, "colors": colours}})


def _rewrite_table(output: SlideOutput, replaced: set[int], pending: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # Both parts in the engine's part format (Arrow IPC), which assemble_table streams.
    kept = pending / "kept.arrow"
    schema = table_schema(output.plan.stain, output.plan.class_set)
    drop = pa.array(sorted(replaced), pa.uint32())
    with atomic_path(kept) as tmp, pa.OSFile(str(tmp), "wb") as sink, \
            pa.ipc.new_file(sink, schema) as writer:
        for batch in pq.ParquetFile(output.table_path).iter_batches(batch_size=65536):
            table = pa.Table.from_batches([batch]).cast(schema)
            writer.write_table(table.filter(pc.invert(pc.is_in(table["id"], drop))))
    plan = output.plan
    assemble_table([kept, pending / "rows.arrow"], plan.stain, output.table_path,
                   output.csv_path,
                   table_metadata(plan.mpp, plan.stain, plan.model, plan.checkpoint,
                                  plan.vectors), plan.class_set)


def _feature_id(line: str) -> int:
    match = _FEATURE_ID.search(line)
    if match:
        return int(match.group(1))
    return int(parse_json_line(line)["properties"]["measurements"]["id"])


def _rewrite_geojson(output: SlideOutput, replaced: set[int], pending: Path) -> None:
    import gzip

    path = output.geojson_path
    compressed = path.suffix == ".gz"
    kept = pending / "kept.geojsonl"
    opener = gzip.open if compressed else open
    with atomic_path(kept) as tmp, open(tmp, "w", encoding="utf-8") as out, \
            opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            line = line.rstrip("\n").rstrip(",")
            if not line.startswith('{"type":"Feature"'):
                continue  # the collection's opening and closing lines
            if _feature_id(line) not in replaced:
                out.write(line)
                out.write("\n")
    assemble_geojson([kept, pending / "features.geojsonl"], path, compressed)
