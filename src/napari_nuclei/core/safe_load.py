"""Read model weights from files made by others without ever running code from them.

Weights files are pickles, and unpickling can call any function the file names. Model-zoo
``.pkl`` files and shared run folders are the normal way weights travel, so every path
that reads weights (the training pre-check, detectron2's checkpointer, prediction) goes
through :func:`load_weights_file`:

- torch files (``.pth``; zip or legacy format) are read with ``torch.load(weights_only=True)``,
  torch's own allow-list of tensors and plain containers;
- detectron2 / Caffe2 model-zoo ``.pkl`` files are read by :class:`_DataOnlyUnpickler`, which
  accepts plain containers, numbers, strings and numpy arrays and dtypes, and refuses any
  other global the file names before it is called.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

from .errors import WeightsError

UNSAFE_PROBLEM = "refuses to load: the file contains executable objects"


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The numpy callables a pickled array or dtype needs, under their old and new names."""
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


def _plain_globals() -> dict[tuple[str, str], object]:
    import _codecs
    import collections

    return {
        ("collections", "OrderedDict"): collections.OrderedDict,
        # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1").
        ("_codecs", "encode"): _codecs.encode,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
    }


class UnsafeWeightsError(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list; nothing of it was called."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(name)


class _DataOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data and numpy arrays."""

    _allowed: dict[tuple[str, str], object] | None = None

    def find_class(self, module: str, name: str):
        if _DataOnlyUnpickler._allowed is None:
            _DataOnlyUnpickler._allowed = {**_numpy_globals(), **_plain_globals()}
        try:
            return _DataOnlyUnpickler._allowed[(module, name)]
        except KeyError:
            raise UnsafeWeightsError(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise UnsafeWeightsError("a persistent object reference")


def load_data_pickle(path: str | Path) -> object:
    """Unpickle a file that must hold only data (containers, numbers, strings, arrays).

    Parameters
    ----------
    path : str or Path
        The pickle file (a detectron2 or Caffe2 model-zoo ``.pkl``).

    Returns
    -------
    object

    Raises
    ------
    WeightsError
        When the file names anything else (it is refused before anything is called), or
        cannot be read as a pickle.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            # Python 2 pickles (the model zoo's) hold array bytes as latin-1 text.
            return _DataOnlyUnpickler(fh, encoding="latin1").load()
    except UnsafeWeightsError as exc:
        raise WeightsError(path, f"{UNSAFE_PROBLEM} ({exc.name})") from None
    except RecursionError:
        raise WeightsError(path, "cannot be read: nested too deeply") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError) as exc:
        raise WeightsError(path, f"cannot be read as a weights file ({_first_line(exc)})") \
            from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_TORCH_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_TORCH_DETAIL = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")


def load_torch_file(path: str | Path, mmap: bool = False) -> object:
    """``torch.load`` restricted to tensors and plain containers (``weights_only=True``).

    Parameters
    ----------
    path : str or Path
        A file written by ``torch.save`` (detectron2 checkpoints, ``model_final.pth``).
    mmap : bool
        Map the tensors instead of reading them (a cheap check that the file is whole).

    Returns
    -------
    object

    Raises
    ------
    WeightsError
        When the file names anything outside torch's allow-list, or is damaged.
    """
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = _TORCH_GLOBAL.search(str(exc))
        if found:  # torch's allow-list stopped a global before it was called
            raise WeightsError(path, f"{UNSAFE_PROBLEM} ({found.group(1)})") from None
        detail = _TORCH_DETAIL.search(str(exc))
        why = detail.group(1) if detail else _first_line(exc)
        raise WeightsError(path, f"cannot be read as a weights file ({why})") from None
    except RecursionError:
        raise WeightsError(path, "cannot be read: nested too deeply") from None
    except (RuntimeError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, zipfile.BadZipFile, MemoryError) as exc:
        why = _first_line(exc).split(". This is an internal")[0]
        raise WeightsError(path, f"cannot be read as a weights file, damaged or cut short "
                           f"({why})") from None


def _is_pickle(path: Path) -> bool:
    """Whether a file starts like a bare pickle (protocol 2 or later), not a torch zip."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and head[1] <= pickle.HIGHEST_PROTOCOL


def load_weights_file(path: str | Path, mmap: bool = False) -> dict:
    """Read a weights file in the shape detectron2's checkpointer expects.

    Parameters
    ----------
    path : str or Path
        A ``.pth`` checkpoint (torch) or a model-zoo ``.pkl`` (detectron2 or Caffe2).
    mmap : bool
        Map a torch zip file's tensors instead of reading them (to inspect a file fast).

    Returns
    -------
    dict
        ``{"model": state_dict, ...}``. Caffe2 files come back as detectron2 would have
        them: blobs only, momentum dropped, with ``matching_heuristics`` set.

    Raises
    ------
    WeightsError
        When the file holds anything but data, is damaged, or is not a mapping.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        data = load_torch_file(path, mmap=mmap)
    elif not _is_pickle(path) or path.suffix in (".pth", ".pt"):
        data = load_torch_file(path)
    else:
        data = load_data_pickle(path)
    if not isinstance(data, dict):
        raise WeightsError(path, f"holds a {type(data).__name__}, not model weights")
    if path.suffix == ".pkl" and not ("model" in data and "__author__" in data):
        # Caffe2 / Detectron1 zoo layout, converted as detectron2's own loader does.
        blobs = data.get("blobs", data)
        if not isinstance(blobs, dict):
            raise WeightsError(path, "holds no weights (its 'blobs' is not a mapping)")
        model = {k: v for k, v in blobs.items() if not str(k).endswith("_momentum")}
        return {"model": model, "__author__": "Caffe2", "matching_heuristics": True}
    if "model" not in data:
        data = {"model": data}
    if not isinstance(data["model"], dict):
        raise WeightsError(path, "holds no weights ('model' is not a mapping)")
    return data
