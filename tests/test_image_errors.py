"""A photo / exemplar that is not an image: the message names the file and the problem in words,
never a Python exception class."""
import pytest

from maskstudio.errors import MaskFileError
from maskstudio.io.images import read_rgb


def test_not_an_image_says_so_without_the_exception_name(tmp_path):
    bad = tmp_path / "holiday.jpg"
    bad.write_text("this is a text file, not a photo")
    with pytest.raises(MaskFileError) as ei:
        read_rgb(bad)
    msg = str(ei.value)
    assert msg.startswith(f"{bad}: not an image file")
    assert "Error" not in msg and "Unidentified" not in msg


def test_truncated_image_keeps_the_readable_cause(tmp_path):
    from PIL import Image

    good = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(MaskFileError) as ei:
        read_rgb(cut)
    assert str(ei.value).startswith(f"{cut}: ") and "Error:" not in str(ei.value)
