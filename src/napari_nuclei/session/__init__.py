"""The Qt-free session model between the core and the dock's widgets."""

from .model import EditedImageError, ImageState, Session

__all__ = ["EditedImageError", "ImageState", "Session"]
