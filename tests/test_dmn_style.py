"""DMN style space: boundary fitting, style edits, per-region styles, style latent files.

Tiny real DMNs (engine_models) for the engine mechanics; the shipped starter DMN and shipped
boundaries on held-out CelebAMask-HQ masks (skipped without ../shared/data) for the semantics.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import engine_models as em
from maskstudio.engine import Engine, Exemplar, RenderRequest
from maskstudio.engine.types import StyleCode
from maskstudio.errors import LatentFileError, RenderError
from maskstudio.io.style_files import (
    find_boundaries,
    read_boundary,
    read_style_latent,
    write_boundary,
    write_style_latent,
)
from maskstudio.settings import Settings
from maskstudio.training.boundaries import evaluate_boundary, fit_ridge, fit_svm

SIZE = 64


# ----------------------------------------------------------------------------- fitting

def _planted(n=800, dim=200, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.normal(0, 0.7, dim))  # anisotropic code space, like AdaIN parameters
    x = rng.normal(size=(n, dim)) * scales + rng.normal(size=dim)
    truth = rng.normal(size=dim)
    truth /= np.linalg.norm(truth)
    y = 3.0 * (x @ truth) + 7.0 + noise * rng.normal(size=n) * (x @ truth).std() * 3
    return x, y, truth


def test_ridge_recovers_a_planted_direction():
    x, y, truth = _planted()
    fit = fit_ridge(x[:600], y[:600])
    cos = float(fit["normal"] @ truth)
    assert cos > 0.9, cos
    ev = evaluate_boundary(fit, x[:600], y[:600], x[600:], y[600:])
    assert ev["r2"] > 0.8 and ev["accuracy"] > 0.95, ev
    # slider units: +1 std along the normal predicts +scale·std of the attribute
    assert abs(np.linalg.norm(fit["normal"]) - 1) < 1e-9
    # a target independent of the codes is not separable
    rng = np.random.default_rng(1)
    ynoise = rng.normal(size=800)
    ev0 = evaluate_boundary(fit_ridge(x[:600], ynoise[:600]), x[:600], ynoise[:600], x[600:], ynoise[600:])
    assert ev0["r2"] < 0.1 and ev0["accuracy"] < 0.8, ev0


def test_svm_on_quantiles_recovers_a_planted_direction():
    x, y, truth = _planted(n=500, dim=100, seed=2)
    fit = fit_svm(x[:400], y[:400], quantile=0.3)
    assert float(fit["normal"] @ truth) > 0.5, float(fit["normal"] @ truth)  # random: 0 ± 0.07
    ev = evaluate_boundary(fit, x[:400], y[:400], x[400:], y[400:])
    assert ev["accuracy"] > 0.9, ev


# ----------------------------------------------------------------------------- files

def test_boundary_and_style_files_round_trip_and_bad_files_name_the_path(tmp_path):
    n = np.arange(1, 9, dtype=np.float64)
    p = write_boundary(tmp_path / "dmn_boundaries", "hair_lightness", n, {"std": 2.5, "dmn": {"sha256": "ab"}})
    b = read_boundary(p)
    assert b.normal.dtype == np.float32 and np.load(p).shape == (1, 8)
    assert abs(np.linalg.norm(b.normal) - 1) < 1e-6 and b.std == 2.5 and b.dmn_sha256 == "ab"
    found, skipped = find_boundaries([(tmp_path, "user")])
    assert list(found) == ["hair_lightness"] and skipped == []
    np.save(p, np.ones((1, 8), np.float32))  # not unit norm
    with pytest.raises(LatentFileError, match=rf"{p}: boundary is not unit norm"):
        read_boundary(p)
    _, skipped = find_boundaries([(tmp_path, "user")])
    assert len(skipped) == 1 and "unit norm" in skipped[0][1]
    p.with_suffix(".json").write_text("{broken")
    with pytest.raises(LatentFileError, match="unreadable JSON"):
        read_boundary(p)

    codes = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    npy, js = write_style_latent(tmp_path / "look", codes, [(), ("hair",)], {"dmn": {"id": "x", "sha256": "cd"}})
    lat = read_style_latent(js)
    assert np.array_equal(lat.codes, codes) and lat.rows == ((), ("hair",)) and lat.dmn_sha256 == "cd"
    np.save(tmp_path / "wplus.npy", np.zeros((1, 18, 512), np.float32))
    (tmp_path / "wplus.json").write_text(js.read_text())
    with pytest.raises(LatentFileError, match="StyleGAN W\\+ latent"):
        read_style_latent(tmp_path / "wplus.npy")
    (tmp_path / "pickled.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, "
                                          b"'shape': (1,), }" + b" " * 60 + b"\n" + b"\x80\x04N.")
    (tmp_path / "pickled.json").write_text(js.read_text())
    with pytest.raises(LatentFileError, match="pickled.npy"):
        read_style_latent(tmp_path / "pickled.npy")
    with pytest.raises(LatentFileError, match="sidecar JSON not found"):
        read_style_latent(tmp_path / "nothing.npy")


# ----------------------------------------------------------------------------- engine (tiny DMN)

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny DMN + two boundaries fitted for it (random unit normals, real files)."""
    d = tmp_path_factory.mktemp("dmn-style")
    em.write_dmn(d)
    doc = json.loads((d / "dmn_tiny" / "dmn_tiny.json").read_text())
    from maskstudio.models.dense_mapping import DenseMappingConfig

    dim = DenseMappingConfig.from_dict(doc["config"]).num_adain_params
    rng = np.random.default_rng(0)
    a = rng.normal(size=dim)
    b = rng.normal(size=dim) + 0.8 * a  # correlated with a: conditional editing matters
    for name, v in (("hair_lightness", a), ("skin_lightness", b)):
        write_boundary(d / "dmn_boundaries", name, v, {"std": 0.5, "dmn": {"id": "dmn_tiny", "sha256": doc["sha256"]}})
    write_boundary(d / "dmn_boundaries", "other_dmn", a, {"std": 0.5, "dmn": {"id": "x", "sha256": "0" * 64}})
    return d, dim


def _engine(d: Path) -> Engine:
    return Engine(Settings(device="cpu", models_dir=d, shipped_checkpoints=d / "none"), style_size_px=SIZE,
                  start_worker=False)


def _inputs(seed=0):
    labels, image = em.face_inputs(SIZE, seed=seed)
    return labels, Exemplar(image, labels, name=f"ex{seed}")


def test_style_edit_reruns_only_the_generator_and_moves_along_the_normal(tiny):
    d, dim = tiny
    eng = _engine(d)
    assert sorted(eng.dmn_boundaries()) == ["hair_lightness", "skin_lightness"]  # other_dmn: another sha
    assert eng.styles()["dmn_boundaries"] == ["hair_lightness", "skin_lightness"]
    labels, ex = _inputs()
    r0 = eng.render_sync(RenderRequest(labels, ex, want_style=True))
    assert r0.ok and r0.stages_run == ["style", "face"] and r0.style_latent.shape == (1, dim)
    r1 = eng.render_sync(RenderRequest(labels, ex, style_edits={"hair_lightness": 2.0}, want_style=True))
    assert r1.stages_run == ["face"] and not np.array_equal(r0.image, r1.image)
    zero = eng.render_sync(RenderRequest(labels, ex, style_edits={"hair_lightness": 0.0}))
    assert zero.stages_run == [] and np.array_equal(zero.image, r0.image)
    bounds = eng.dmn_boundaries()
    na, nb = (bounds[k].normal.astype(np.float64) for k in ("hair_lightness", "skin_lightness"))
    delta = (r1.style_latent - r0.style_latent)[0].astype(np.float64)
    # conditional (default): +2 std along its own normal, nothing along the other one
    assert delta @ na == pytest.approx(2.0 * 0.5, rel=1e-3)
    assert abs(delta @ nb) < 1e-3
    plain, _ = eng.style_code(RenderRequest(labels, ex, style_edits={"hair_lightness": 2.0}, style_conditional=False))
    dp = (plain - r0.style_latent)[0].astype(np.float64)
    assert np.allclose(dp, 1.0 * na, atol=1e-4) and abs(dp @ nb) > 0.1
    bad = eng.render_sync(RenderRequest(labels, ex, style_edits={"nope": 1.0}))
    assert not bad.ok and "unknown DMN style boundary 'nope'" in bad.error and "hair_lightness" in bad.error
    eng.close()


def test_region_style_costs_one_pass_per_extra_style_and_composites_inside_the_class(tiny):
    d, _ = tiny
    eng = _engine(d)
    labels, ex = _inputs(0)
    _, exb = _inputs(5)
    exb = Exemplar(np.ascontiguousarray(255 - np.array(exb.image)), exb.labels, name="B")  # a very different look
    main = eng.render_sync(RenderRequest(labels, ex)).image
    only_b = eng.render_sync(RenderRequest(labels, exb)).image
    eng.stage_counts.clear()
    r = eng.render_sync(RenderRequest(labels, ex, region_styles={"hair": exb, 11: exb}))
    assert r.ok and eng.stage_counts == {}  # both faces were cached already: the composite is free
    eng.clear_cache()
    eng.stage_counts.clear()
    r = eng.render_sync(RenderRequest(labels, ex, region_styles={"hair": exb, 11: exb}))
    assert eng.stage_counts == {"style": 2, "face": 2}  # one style shared by two classes: one extra pass
    move = eng.render_sync(RenderRequest(labels, ex, region_styles={"hair": exb, 11: exb},
                                         style_edits={"hair_lightness": 1.0}))
    assert move.stages_run == ["face", "face"]  # slider move: main + one extra pass, no encoding
    import cv2

    hair = (labels == 13).astype(np.uint8)
    core = cv2.erode(hair, np.ones((5, 5), np.uint8)).astype(bool)
    assert core.sum() > 50
    away = cv2.dilate(((labels == 13) | (labels == 11)).astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    assert np.abs(r.image[core].astype(int) - only_b[core]).max() <= 1
    assert np.array_equal(r.image[away], main[away])
    assert not np.array_equal(r.image, main)
    with pytest.raises(RenderError, match="unknown class 'fur'"):
        RenderRequest(labels, ex, region_styles={"fur": exb})
    eng.close()


def test_style_latent_exported_and_loaded_back_renders_the_same_image(tiny, tmp_path):
    d, _ = tiny
    eng = _engine(d)
    labels, ex = _inputs(0)
    _, exb = _inputs(3)
    request = RenderRequest(labels, ex, region_styles={"hair": exb}, style_edits={"skin_lightness": -1.5},
                            want_style=True)
    r = eng.render_sync(request)
    assert r.ok and r.style_latent.shape[0] == 2 and r.style_rows == ((), ("hair",))
    sha = eng.dmn_sha256()
    npy, _ = write_style_latent(tmp_path / "look.npy", r.style_latent, r.style_rows,
                                {"dmn": {"id": "dmn_tiny", "sha256": sha}})
    lat = read_style_latent(npy)
    codes = [StyleCode(c, name=f"look[{i}]", dmn_sha256=lat.dmn_sha256) for i, c in enumerate(lat.codes)]
    again = eng.render_sync(RenderRequest(labels, ex, style=codes[0], region_styles={"hair": codes[1]}))
    assert again.ok and np.array_equal(again.image, r.image)
    alien = StyleCode(lat.codes[0], dmn_sha256="f" * 64)
    bad = eng.render_sync(RenderRequest(labels, ex, style=alien))
    assert not bad.ok and "belongs to another DMN" in bad.error
    short = eng.render_sync(RenderRequest(labels, ex, style=StyleCode(lat.codes[0][:10])))
    assert not short.ok and "has 10 values" in short.error
    eng.close()


# ----------------------------------------------------------------------------- shipped DMN + real faces

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def shipped():
    """The shipped starter DMN and boundaries, and a few held-out faces (val split) at 256²."""
    from maskstudio.settings import SHIPPED_CHECKPOINTS
    from maskstudio.training.data import find_pairs, read_labels, read_rgb, split_stems

    if not (DATA / "celebamask_pairs").is_dir():
        pytest.skip(f"real face data not present at {DATA}")
    if not (SHIPPED_CHECKPOINTS / "dmn_boundaries").is_dir():
        pytest.skip("no shipped DMN boundaries")
    pairs = find_pairs(DATA)
    val = split_stems(pairs.stems, 0.1, 0)["val"]
    faces = [(read_rgb(pairs.images[s], 256), read_labels(pairs.masks[s], 256)) for s in val]
    import tempfile

    tmp = tempfile.mkdtemp(prefix="ms-dmn-style-")
    eng = Engine(Settings(device="cpu", models_dir=Path(tmp)), start_worker=False)
    yield eng, faces
    eng.close()


def _measure(image, labels):
    from maskstudio.training.attributes import measure

    return measure(image, labels)


def test_shipped_boundaries_move_their_attribute_monotonically_and_the_others_much_less(shipped):
    eng, faces = shipped
    bounds = eng.dmn_boundaries()
    for must in ("hair_lightness", "skin_lightness", "lip_redness", "background_lightness"):
        assert must in bounds, f"{must} not shipped"
    # 4 held-out faces with hair and lips, each rendered from its own mask with its own photo as exemplar
    picked = [(im, lb) for im, lb in faces if (lb == 13).sum() > 3000 and np.isin(lb, (11, 12)).sum() > 150][:4]
    values = (-2.0, -1.0, 0.0, 1.0, 2.0)
    for name, b in sorted(bounds.items()):
        y_std = float(b.meta["train"]["y_std"])
        curves: dict[str, list[float]] = {}
        for v in values:
            rows = []
            for i, (im, lb) in enumerate(picked):
                r = eng.render_sync(RenderRequest(lb, Exemplar(im, lb, key=f"val{i}"), size_px=256,
                                                  style_edits={name: v}))
                assert r.ok, r.error
                rows.append(_measure(r.image, lb))
            for k in rows[0]:
                curves.setdefault(k, []).append(float(np.nanmean([r[k] for r in rows])))
        own = np.array(curves[name])
        assert np.all(np.diff(own) > 0), f"{name}: {own}"
        change = (own[-1] - own[0]) / y_std
        others = {k: abs(c[-1] - c[0]) / float(bounds[k].meta["train"]["y_std"])
                  for k, c in curves.items() if k != name and k in bounds}
        mean_other = float(np.mean(list(others.values()))) if others else 0.0
        assert change > 0.2, f"{name}: ±2 std moves it by only {change:.2f} attribute std"
        assert mean_other < 0.5 * change, f"{name}: the other attributes move {mean_other:.2f} std on average (own {change:.2f}): {others}"


def test_region_style_moves_the_hair_toward_the_chosen_exemplar_and_keeps_the_skin(shipped):
    from maskstudio.training.attributes import to_lab

    eng, faces = shipped
    with_hair = [(im, lb) for im, lb in faces if (lb == 13).sum() > 4000]
    light = [_measure(im, lb)["hair_lightness"] for im, lb in with_hair]
    a_im, a_lb = with_hair[int(np.argmin(light))]   # darkest hair: main exemplar
    b_im, b_lb = with_hair[int(np.argmax(light))]   # lightest hair: the hair exemplar
    target = next(lb for im, lb in with_hair[1:] if lb is not a_lb and lb is not b_lb)
    ex_a, ex_b = Exemplar(a_im, a_lb, name="A"), Exemplar(b_im, b_lb, name="B")

    def region_lab(img, cls):
        lab = to_lab(img)
        return lab[target == cls].mean(0)

    ra = eng.render_sync(RenderRequest(target, ex_a, size_px=256)).image
    rb = eng.render_sync(RenderRequest(target, ex_b, size_px=256)).image
    mix = eng.render_sync(RenderRequest(target, ex_a, size_px=256, region_styles={"hair": ex_b})).image
    hair_a, hair_b, hair_mix = (region_lab(x, 13) for x in (ra, rb, mix))
    skin_a, skin_b, skin_mix = (region_lab(x, 1) for x in (ra, rb, mix))
    assert np.linalg.norm(hair_mix - hair_b) < 0.25 * np.linalg.norm(hair_a - hair_b)
    assert np.linalg.norm(skin_mix - skin_a) < 0.25 * np.linalg.norm(skin_b - skin_a) + 1.0
