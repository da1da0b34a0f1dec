"""The pixels of the predicted images the dock shows, read off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .workers import start_job


def read_plane(path) -> np.ndarray:
    """The pixels of an image file as one 2D plane, or a one-line error naming the file."""
    from ..core.image_io import read_image
    from ..core.predict.outputs import single_plane

    return single_plane(read_image(path), path)


class PixelStore:
    """Pixels per image name: sent along with a prediction, or read from the image's file.

    A file is read in a worker thread, one at a time: reading a large image on the GUI
    thread would freeze the viewer.
    """

    def __init__(self):
        self._pixels: dict[str, np.ndarray] = {}
        self._reading = None

    def __contains__(self, name: str) -> bool:
        return name in self._pixels

    def get(self, name: str) -> np.ndarray | None:
        """The pixels of ``name``, if known."""
        return self._pixels.get(name)

    def keep(self, name: str, pixels: np.ndarray) -> None:
        """Remember the pixels of ``name``; equal pixels already kept stay (so the layer
        showing them is not redrawn)."""
        kept = self._pixels.get(name)
        if kept is None or kept.shape != pixels.shape or not np.array_equal(kept, pixels):
            self._pixels[name] = pixels

    @property
    def reading(self) -> bool:
        """Whether an image is being read."""
        return self._reading is not None

    def forget(self, name: str) -> None:
        """Drop the pixels of an image no longer in the session."""
        self._pixels.pop(name, None)

    def read(self, name: str, path, on_read: Callable, on_finish: Callable | None = None,
             quiet: bool = False, on_error: Callable | None = None) -> bool:
        """Read the pixels of ``name`` from ``path`` in a worker thread.

        Parameters
        ----------
        name : str
            The image.
        path : Path
            Its file.
        on_read : callable
            Called on the GUI thread with the pixels once read (and kept).
        on_finish : callable, optional
            Called on the GUI thread when the reading ends, read or not.
        quiet : bool
            Say nothing when the file cannot be read (someone else reports it).
        on_error : callable, optional
            Called with the error when the file cannot be read, instead of a
            notification.

        Returns
        -------
        bool
            False when another image is being read (nothing is started).
        """
        if self._reading is not None:
            return False

        def on_return(pixels):
            self.keep(name, pixels)
            on_read(pixels)

        def finished():
            self._reading = None
            if on_finish is not None:
                on_finish()

        self._reading = start_job(read_plane, path, on_return=on_return, on_finish=finished,
                                  on_error=(lambda _exc: None) if quiet else on_error)
        return True
