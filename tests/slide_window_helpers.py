"""Readers of slide outputs shared by the slide window and slide viewer tests."""


def labels_of(out, level="s0"):
    """A level of a slide output's labels, read whole."""
    import zarr

    return zarr.open_group(str(out / "nuclei.ome.zarr"), mode="r")[level][:]


def table_of(out):
    """A slide output's nucleus table, indexed by id."""
    import pyarrow.parquet as pq

    return pq.read_table(out / "nuclei.parquet").to_pandas().set_index("id")
