"""The "Semantic (DMN style)" slider group, per-region styles and style latents, driven in the real
window. With the shipped checkpoints (starter DMN + its boundaries) the group is enabled out of
the box; with a DMN no shipped boundary fits, it explains why."""
from __future__ import annotations

import numpy as np
import pytest

from maskstudio.settings import SHIPPED_CHECKPOINTS
from ui_helpers import RENDER_TIMEOUT_MS, SIZE, wait_full_render


pytestmark = pytest.mark.skipif(not (SHIPPED_CHECKPOINTS / "dmn_boundaries").is_dir(),
                                reason="no shipped DMN boundaries")




@pytest.fixture
def shipped_settings(tiny_install, tmp_path):
    """The real shipped checkpoints (starter DMN, parser, DMN boundaries); the tiny gallery."""
    from maskstudio.settings import Settings

    return Settings(device="cpu", models_dir=tmp_path / "user-models", shipped_checkpoints=SHIPPED_CHECKPOINTS,
                    resources=tiny_install["resources"])


def test_group_is_enabled_with_the_shipped_models_and_a_slider_rerenders_only_the_generator(
        qtbot, make_window, shipped_settings):
    from maskstudio.engine import Engine

    w = make_window(settings=shipped_settings, engine=Engine(shipped_settings))
    first = wait_full_render(qtbot, w, ok=True)
    g = w.sliders.dmn_style
    assert g.body.isVisibleTo(w) and g.body.isEnabled() and not g.hint.isVisibleTo(w)
    for name in ("hair_lightness", "skin_lightness", "lip_redness", "background_lightness"):
        assert name in g.sliders, sorted(g.sliders)
    assert g.conditional.isChecked()
    assert "held-out R²" in g.sliders["hair_lightness"].slider.toolTip()
    s = g.sliders["hair_lightness"]
    assert (s.lo, s.hi) == (-3.0, 3.0)
    w.client.engine.stage_counts.clear()
    s.set_value(2.5)   # emits like a drag
    res = wait_full_render(qtbot, w, ok=True)
    assert not np.array_equal(res.image, first.image)
    assert set(w.client.engine.stage_counts) == {"face"}   # the style code was cached: generator only
    assert w.session.render_settings.style_edits["hair_lightness"] == 2.5
    # the StyleGAN boundary group is unchanged: no official models here
    assert not w.sliders.groups["edit"].body.isVisibleTo(w)


def test_region_style_from_the_gallery_menu_and_the_project_keeps_it(qtbot, make_window, shipped_settings,
                                                                     tmp_path, recorder):
    from maskstudio.engine import Engine

    w = make_window(settings=shipped_settings, engine=Engine(shipped_settings))
    base = wait_full_render(qtbot, w, ok=True)
    menu = w.gallery.region_menu(1)
    texts = [a.text() for a in menu.actions()]
    assert "Use for hair" in texts and "Use for lips" in texts
    next(a for a in menu.actions() if a.text() == "Use for hair").trigger()
    res = wait_full_render(qtbot, w, ok=True)
    assert not np.array_equal(res.image, base.image)
    assert list(w.sliders.dmn_style.region_rows) == ["hair"]
    w.sliders.dmn_style.sliders["skin_lightness"].set_value(-1.5)
    edited = wait_full_render(qtbot, w, ok=True)
    path = tmp_path / "p.msproj"
    assert w.save_project(path)
    w2 = make_window(settings=shipped_settings, engine=Engine(shipped_settings), open_sample=False)
    assert w2.open_project(path)
    again = wait_full_render(qtbot, w2)
    assert w2.session.region_summary() == {"hair": w.gallery.entries[1].name}
    assert w2.sliders.dmn_style.sliders["skin_lightness"].value() == pytest.approx(-1.5)
    assert np.array_equal(again.image, edited.image)
    # the × of the row drops it
    w2.clear_region_style("hair")
    assert w2.session.region_styles == {}


def test_export_latents_writes_the_dmn_style_latent_and_loading_it_renders_the_same(qtbot, make_window,
                                                                                     shipped_settings, tmp_path,
                                                                                     recorder):
    from maskstudio.engine import Engine
    from maskstudio.io.style_files import read_style_latent

    w = make_window(settings=shipped_settings, engine=Engine(shipped_settings))
    wait_full_render(qtbot, w, ok=True)
    w.sliders.dmn_style.sliders["background_lightness"].set_value(2.0)
    w.use_region_style(w.gallery.entries[1], "lips")
    look = wait_full_render(qtbot, w, ok=True)
    out = tmp_path / "look.npy"
    with qtbot.waitSignal(w.styleExported, timeout=RENDER_TIMEOUT_MS):
        assert w.export_latents(out)        # no StyleGAN latent: the DMN style latent
    lat = read_style_latent(out)
    assert lat.codes.shape[0] == 2 and lat.rows[1] == ("u_lip", "l_lip")
    assert lat.meta["dmn"]["id"] == "dmn_starter" and lat.meta["edits"] == {"background_lightness": 2.0}
    # a fresh window: reset sliders, load the latent -> the same image
    w2 = make_window(settings=shipped_settings, engine=Engine(shipped_settings))
    wait_full_render(qtbot, w2)
    assert w2.load_style_latent(out)
    again = wait_full_render(qtbot, w2)
    assert np.array_equal(again.image, look.image)
    assert "look" in w2.sliders.dmn_style.loaded_label.text()
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((1, 18, 512), np.float32))
    (tmp_path / "bad.json").write_text(out.with_suffix(".json").read_text())
    assert not w2.load_style_latent(bad)
    assert recorder.errors and "bad.npy" in recorder.errors[-1][1]


def test_without_fitting_boundaries_the_group_says_why(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w, ok=True)
    g = w.sliders.dmn_style
    assert not g.body.isVisibleTo(w) and g.hint.isVisibleTo(w)
    assert "No DMN style boundaries" in g.hint.text() or "made for" in g.hint.text()
    assert SIZE == 64
