"""Projects and autosave keep the source photo, its alignment and the parsed mask."""
from __future__ import annotations

import numpy as np
import pytest

import photo_fixtures as pf
from maskstudio.errors import ProjectFileError
from maskstudio.session.project import Project, load_project, save_project


@pytest.fixture(scope="module")
def photo_source(tmp_path_factory):
    import torch

    from maskstudio.photo.edit import open_photo
    from maskstudio.settings import SHIPPED_CHECKPOINTS
    from maskstudio.training.common import load_parser

    torch.set_num_threads(2)
    parser = load_parser(SHIPPED_CHECKPOINTS / "face_parser.safetensors")
    crop, _ = pf.gallery_face(3)
    _, _, data = pf.synthetic_photo(crop, np.random.default_rng(11), jpeg=True, angle_deg=10, scale=0.7)
    path = tmp_path_factory.mktemp("photo") / "holiday.jpg"
    path.write_bytes(data)
    return open_photo(path, parser)


def test_session_project_round_trip_keeps_the_photo(photo_source, tmp_path):
    from maskstudio.session import EditSession

    s = EditSession()
    s.set_photo(photo_source)
    s.new_document(photo_source.parsed)
    s.set_whole_face(True)
    path = s.save_project(tmp_path / "p.msproj")
    t = EditSession()
    t.open_project(path)
    assert t.photo is not None and t.whole_face
    assert t.photo.file_bytes == photo_source.file_bytes
    assert np.array_equal(t.photo.image, photo_source.image)
    assert np.array_equal(t.photo.crop, photo_source.crop)
    assert np.array_equal(t.photo.parsed, photo_source.parsed)
    np.testing.assert_array_equal(t.photo.alignment.crop_from_photo, photo_source.alignment.crop_from_photo)
    assert np.array_equal(t.source_photo, photo_source.image)
    # a painted-mask project has no photo
    u = EditSession()
    u.new_document(np.zeros((512, 512), np.uint8))
    u.open_project(u.save_project(tmp_path / "q.msproj"))
    assert u.photo is None and u.source_photo is None


def test_a_photo_without_alignment_is_refused(tmp_path):
    proj = Project(labels=np.zeros((8, 8), np.uint8), photo_file=b"x", photo_name="a.jpg")
    with pytest.raises(ProjectFileError, match="alignment"):
        save_project(tmp_path / "bad.msproj", proj)
    assert load_project(save_project(tmp_path / "ok.msproj", Project(labels=np.zeros((8, 8), np.uint8)))).photo_file is None
