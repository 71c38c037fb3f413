"""maskstudio.mask: the editable label map (no Qt, no torch).

``MaskDocument`` holds a uint8 H x W map of class indices (:mod:`maskstudio.labels`) and offers the
painting operations of the UI (brush / erase / restore strokes, flood fill, polygon fill,
eyedropper / class picker, rectangle / ellipse selection moved or copied) with class lock, mirror mode and patch-based undo. Geometry conventions: see
:mod:`maskstudio.mask.raster`.
"""
from maskstudio.mask.document import (
    MAX_DIAMETER_PX,
    MIN_DIAMETER_PX,
    TOOLS,
    MaskDocument,
    Stroke,
)
from maskstudio.mask.raster import BBox, bbox_union, polygon_footprint, selection_footprint, stroke_footprint

__all__ = [
    "BBox",
    "MAX_DIAMETER_PX",
    "MIN_DIAMETER_PX",
    "MaskDocument",
    "Stroke",
    "TOOLS",
    "bbox_union",
    "polygon_footprint",
    "selection_footprint",
    "stroke_footprint",
]
