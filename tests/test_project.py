"""Project files: round trip, atomic writes, versioning, clear errors for damaged files."""
import json
import zipfile

import numpy as np
import pytest

from maskstudio.errors import ProjectFileError
from maskstudio.engine.render_settings import AgileSettings, DualSettings, RenderSettings
from maskstudio.session.project import FORMAT_VERSION, Project, load_project, save_project


def _project(rng):
    labels = rng.integers(0, 19, (64, 48), dtype=np.uint8)
    return Project(
        labels=labels,
        original_labels=np.zeros_like(labels),
        original_size_hw=(1024, 768),
        exemplar_name="ex01",
        exemplar_image=rng.integers(0, 256, (64, 48, 3), dtype=np.uint8),
        exemplar_mask=rng.integers(0, 19, (64, 48), dtype=np.uint8),
        render_settings=RenderSettings(output="dual", edits={"smile_w_boundary": 1.5},
                                       dual=DualSettings("toon", "style3", (0.5,) * 7 + (1.0,) * 11), morph=0.25),
        exemplar_path="/somewhere/ex01.png",
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
    assert q.render_settings == p.render_settings and q.models == p.models
    assert q.exemplar_path == "/somewhere/ex01.png"
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
        save_project(path, Project(labels=np.zeros((8, 8), np.uint8), models={"x": object()}))
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


def _rewrite_manifest(path, edit):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    m = json.loads(members["manifest.json"])
    edit(m)
    members["manifest.json"] = json.dumps(m).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)


def test_format_1_project_with_slider_dict_still_opens(tmp_path):
    """A project written before the typed settings: format 1, an untyped ``sliders`` dict holding
    the output, the slider values and the exemplar path."""
    path = tmp_path / "old.msproj"
    labels = np.full((16, 16), 1, np.uint8)
    save_project(path, Project(labels=labels))
    sliders = {"output": "agile", "edits": {"smile_w_boundary": 0.0, "age_w_boundary": -1.25},
               "agile": {"style": "agile_toon", "strength": 0.6, "branch": "B"},
               "dual": {"style": "dual_cartoon", "code": None, "weights": [0.5] * 18},
               "face_morph": 0.3, "morph": 0.8, "exemplar_path": "/photos/ann.png"}

    def to_v1(m):
        m["format_version"] = 1
        del m["render_settings"], m["exemplar_path"]
        m["sliders"] = sliders
    _rewrite_manifest(path, to_v1)
    q = load_project(path)
    np.testing.assert_array_equal(q.labels, labels)
    assert q.render_settings == RenderSettings(
        output="agile", edits={"smile_w_boundary": 0.0, "age_w_boundary": -1.25},
        agile=AgileSettings("agile_toon", 0.6, "B"), dual=DualSettings("dual_cartoon", None, (0.5,) * 18),
        face_morph=0.3, morph=0.8)
    assert q.exemplar_path == "/photos/ann.png"
    # saved again, it is a current-format file with the same settings
    save_project(path, q)
    with zipfile.ZipFile(path) as zf:
        m = json.loads(zf.read("manifest.json"))
    assert m["format_version"] == FORMAT_VERSION and "sliders" not in m
    assert load_project(path).render_settings == q.render_settings


def test_format_1_project_without_sliders_opens_with_defaults(tmp_path):
    path = save_project(tmp_path / "bare.msproj", Project(labels=np.zeros((8, 8), np.uint8)))

    def to_v1(m):
        m["format_version"] = 1
        del m["render_settings"], m["exemplar_path"]
    _rewrite_manifest(path, to_v1)
    q = load_project(path)
    assert q.render_settings == RenderSettings() and q.exemplar_path is None


@pytest.mark.parametrize("bad, problem", [
    ({"output": "cartoon"}, "unknown output 'cartoon'"),
    ({"agile": {"strength": "high"}}, "agile strength must be a number"),
    ({"dual": {"weights": [1, "x"]}}, "dual weight 1 must be a number"),
    ({"morph": 3}, r"morph must be in \[0, 1\]"),
    ({"version": 99}, "newer"),
])
def test_bad_render_settings_name_the_file_and_the_value(tmp_path, bad, problem):
    path = save_project(tmp_path / "bad.msproj", Project(labels=np.zeros((8, 8), np.uint8)))
    _rewrite_manifest(path, lambda m: m["render_settings"].update(bad))
    with pytest.raises(ProjectFileError, match=rf"bad\.msproj: render settings: .*{problem}"):
        load_project(path)
