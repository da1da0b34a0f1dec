"""Which path options of each command are read and which are written, kept apart.

An output that equals, lies inside or contains an input would replace the user's data
(``evaluate -o`` naming its own ``--gt``), mix results into it (a run or label images
written among the samples, then read back as samples), or be refused halfway by the
next step. Every command's path options are listed here, and the test suite fails when
a command gains a path option this table does not classify.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import OptionError

# Values of path options that name no file.
_NOT_PATHS = frozenset({"zoo", "none"})


@dataclass(frozen=True)
class PathRoles:
    """The destinations (``args`` attribute names) a command reads and writes."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    # Options that are read and written in place (a run being resumed): never compared.
    in_place: tuple[str, ...] = ()


PATH_ROLES: dict[str, PathRoles] = {
    "info": PathRoles(),
    "install-engine": PathRoles(),
    "gui": PathRoles(inputs=("run",)),
    "convert": PathRoles(inputs=("dataset", "image_root"), outputs=("output",)),
    "train": PathRoles(inputs=("data", "val", "image_root", "weights"), outputs=("out",),
                       in_place=("resume",)),
    # --checkpoint is a file name within --model, compared through --model.
    "predict": PathRoles(inputs=("model", "images", "test_ids"),
                         outputs=("output", "labels_dir", "measurements", "geojson")),
    "predict-slide": PathRoles(inputs=("slides", "model", "regions"),
                               outputs=("output",)),
    "evaluate": PathRoles(inputs=("gt", "pred", "test_ids"), outputs=("output",)),
    "export": PathRoles(inputs=("labels", "images", "test_ids", "model"), outputs=("output",)),
    "demo": PathRoles(inputs=("sample_data",), outputs=("out",)),
}


def _real(path) -> Path:
    # realpath follows links and never raises on a loop or a missing file.
    return Path(os.path.realpath(Path(path).expanduser()))


def _paths(value) -> list[Path]:
    values = value if isinstance(value, list | tuple) else [value]
    return [_real(v) for v in values
            if v is not None and not (isinstance(v, str) and v in _NOT_PATHS)]


def check_outputs_apart(args: argparse.Namespace) -> None:
    """Refuse an output that equals, lies inside or contains one of the command's inputs.

    Links are resolved on both sides, and ``--overwrite`` does not change the answer.

    Raises
    ------
    OptionError
        Naming the output option, the input it collides with and both paths.
    """
    roles = PATH_ROLES.get(args.command, PathRoles())
    flags = getattr(args, "option_flags", {})
    for out_name in roles.outputs:
        for output in _paths(getattr(args, out_name, None)):
            for in_name in roles.inputs:
                for source in _paths(getattr(args, in_name, None)):
                    how = ("is" if output == source else "lies inside" if
                           output.is_relative_to(source) else "contains" if
                           source.is_relative_to(output) else None)
                    if how is None:
                        continue
                    flag = flags.get(in_name, in_name)
                    raise OptionError(out_name, f"{output} {how} the input {flag} ({source}): "
                                      "outputs are written apart from what a command reads; "
                                      "choose another place (nothing was changed)")
