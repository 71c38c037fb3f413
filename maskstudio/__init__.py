"""MaskStudio: paint a CelebAMask-HQ semantic face mask and render a face from it live."""

__version__ = "0.1.0"
