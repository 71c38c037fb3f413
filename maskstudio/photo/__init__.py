"""maskstudio.photo: edit a real photo end to end (Qt-free).

- :mod:`~maskstudio.photo.landmarks`: 5 landmarks from a class map; the training-set means that
  define the crop convention.
- :mod:`~maskstudio.photo.align`: Haar detection + parser-refined landmarks -> similarity
  transform onto the 512² convention (:class:`Alignment`, ``crop_from_photo``).
- :mod:`~maskstudio.photo.blend`: local re-render (changed labels dilated, feathered + colour
  matched, or Poisson).
- :mod:`~maskstudio.photo.paste`: the edited crop back into the full-resolution photo.
- :mod:`~maskstudio.photo.edit`: :class:`PhotoSource` and :func:`render_edit`, what the CLI and
  the app share.
"""
