"""Project files: round trip, atomic writes, versioning, clear errors for damaged files."""
import json
import zipfile

import numpy as np
import pytest

from maskstudio.errors import ProjectFileError
from maskstudio.io.project import FORMAT_VERSION, Project, load_project, save_project


def _project(rng):
    labels = rng.integers(0, 19, (64, 48), dtype=np.uint8)
    return Project(
        labels=labels,
        original_labels=np.zeros_like(labels),
        original_size_hw=(1024, 768),
        exemplar_name="ex01",
        exemplar_image=rng.integers(0, 256, (64, 48, 3), dtype=np.uint8),
        exemplar_mask=rng.integers(0, 19, (64, 48), dtype=np.uint8),
        sliders={"boundary/smile": 1.5, "dual/weights": [0.75] * 7 + [1.0] * 11, "output": "dmn"},
        latents={"w_plus": rng.standard_normal((1, 18, 512)).astype(np.float32)},
        models={"dmn": {"id": "dmn_starter", "sha256": "ab" * 32}},
        history=[("Brush", labels), ("Fill", np.ones_like(labels))],
    )


def test_round_trip_is_identical(tmp_path):
    p = _project(np.random.default_rng(0))
    out = save_project(tmp_path / "a.msproj", p)
    q = load_project(out)
    np.testing.assert_array_equal(q.labels, p.labels)
    np.testing.assert_array_equal(q.original_labels, p.original_labels)
    np.testing.assert_array_equal(q.exemplar_image, p.exemplar_image)
    np.testing.assert_array_equal(q.exemplar_mask, p.exemplar_mask)
    np.testing.assert_array_equal(q.latents["w_plus"], p.latents["w_plus"])
    assert q.latents["w_plus"].dtype == np.float32 and q.latents["w_plus"].shape == (1, 18, 512)
    assert q.sliders == p.sliders and q.models == p.models
    assert q.original_size_hw == (1024, 768) and q.exemplar_name == "ex01"
    assert [n for n, _ in q.history] == ["Brush", "Fill"]
    np.testing.assert_array_equal(q.history[1][1], p.history[1][1])
    with zipfile.ZipFile(out) as zf:
        m = json.loads(zf.read("manifest.json"))
    assert m["format_version"] == FORMAT_VERSION and m["app_version"]


def test_minimal_project_round_trip(tmp_path):
    labels = np.full((32, 32), 1, np.uint8)
    q = load_project(save_project(tmp_path / "m.msproj", Project(labels=labels)))
    np.testing.assert_array_equal(q.labels, labels)
    assert q.exemplar_image is None and q.latents == {} and q.history == []


def test_save_is_atomic_and_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "a.msproj"
    save_project(path, Project(labels=np.zeros((8, 8), np.uint8)))
    before = path.read_bytes()
    with pytest.raises(ProjectFileError, match="a.msproj"):
        save_project(path, Project(labels=np.zeros((8, 8), np.uint8), sliders={"x": object()}))
    assert path.read_bytes() == before
    assert not (tmp_path / "a.msproj.tmp").exists()


def test_future_version_is_refused_clearly(tmp_path):
    path = tmp_path / "future.msproj"
    save_project(path, Project(labels=np.zeros((8, 8), np.uint8)))
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    m = json.loads(members["manifest.json"])
    m["format_version"] = FORMAT_VERSION + 1
    members["manifest.json"] = json.dumps(m).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    with pytest.raises(ProjectFileError, match=r"future\.msproj: .*newer MaskStudio"):
        load_project(path)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not a zip"),
        (b"PK\x03\x04garbage" * 10, "not a zip"),
        (None, "no manifest"),
    ],
)
def test_damaged_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.msproj"
    if content is None:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("mask.png", b"x")
    else:
        path.write_bytes(content)
    with pytest.raises(ProjectFileError, match=rf"bad\.msproj: .*{problem}"):
        load_project(path)


def test_truncated_project_is_an_error(tmp_path):
    path = save_project(tmp_path / "t.msproj", _project(np.random.default_rng(1)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectFileError, match="t.msproj"):
        load_project(path)


def test_label_values_out_of_range_are_refused(tmp_path):
    with pytest.raises(ProjectFileError, match="not a class"):
        save_project(tmp_path / "x.msproj", Project(labels=np.full((4, 4), 40, np.uint8)))


def test_missing_file(tmp_path):
    with pytest.raises(ProjectFileError, match="no such file"):
        load_project(tmp_path / "nope.msproj")
