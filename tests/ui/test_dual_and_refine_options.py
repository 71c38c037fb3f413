"""The DualStyleGAN group's official options (style ids, keep colours, truncation) and the
Image2StyleGAN panel's loss line and Image2StyleGAN++ options, driven through a real window."""
from __future__ import annotations

import numpy as np
import pytest

from ui_helpers import SIZE, write_tiny_psp

RENDER_TIMEOUT_MS = 30_000
FILE_ORDER = ["zeta.png", "alpha.png"]  # the style file's own (unsorted) order


@pytest.fixture(scope="module")
def dual_settings(tiny_install, tmp_path_factory):
    import torch

    from maskstudio.models.checkpoints import save_checkpoint
    from maskstudio.models.dualstylegan import DualStyleGAN, DualStyleGANConfig, style_code_extras
    from maskstudio.settings import Settings

    d = tmp_path_factory.mktemp("dual-models")
    write_tiny_psp(d)
    dcfg = DualStyleGANConfig(size=16, style_dim=512, n_mlp=2, channels={4: 8, 8: 8, 16: 8}, res_index=4)
    net = DualStyleGAN(dcfg).eval()
    with torch.no_grad():  # non-trivial colour transforms and ModRes weights
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.add_(0.2 * torch.randn_like(t))
    g = torch.Generator().manual_seed(2)
    extras, meta = style_code_extras({n: torch.randn(1, 6, 512, generator=g) for n in FILE_ORDER}, 6)
    (d / "dual_tiny").mkdir()
    save_checkpoint(d / "dual_tiny" / "dual_tiny", net, "dualstylegan", dcfg, extra_tensors=extras, meta=meta)
    return Settings(device="cpu", models_dir=d, shipped_checkpoints=tiny_install["checkpoints"],
                    resources=tiny_install["resources"])


def wait_dual_render(qtbot, w, **want):
    """Wait until the engine is idle and the view shows a full dual render of settings ``want``."""
    def done():
        res = w.render_view.last_result
        assert res is not None and not res.preview and not w.client.busy and res.output == "dual"
        d = w.session.render_settings.dual
        assert all(getattr(d, k) == v for k, v in want.items())
    qtbot.waitUntil(done, timeout=RENDER_TIMEOUT_MS)
    return w.render_view.last_result


def test_dual_group_offers_style_ids_keep_colours_and_truncation(qtbot, make_window, dual_settings, recorder):
    w = make_window(settings=dual_settings)
    qtbot.waitUntil(lambda: w.sliders.groups["dual"].body.isEnabled(), timeout=RENDER_TIMEOUT_MS)
    s = w.sliders
    s.dual_style.setCurrentText("dual_tiny")
    assert [s.dual_code.itemText(i) for i in range(s.dual_code.count())] == [
        "(from the exemplar)", "0: zeta.png", "1: alpha.png"]
    assert "official" in s.dual_code.toolTip()
    s.dual_code.setCurrentIndex(2)
    combo = w.render_view.output
    combo.setCurrentIndex(combo.findData("dual"))
    shown = wait_dual_render(qtbot, w, code="alpha.png")
    st = w.session.render_settings
    assert st.dual.truncation == 0.75 and not st.dual.preserve_color
    base = w.client.engine.render_sync(_request(w, st))
    assert base.ok and np.array_equal(shown.image, base.image), base.error
    # keep colours: a new render from the settings it shows
    s.dual_keep_colours.setChecked(True)
    kept = wait_dual_render(qtbot, w, preserve_color=True)
    assert not np.array_equal(kept.image, base.image)
    assert np.array_equal(kept.image, w.client.engine.render_sync(_request(w, w.session.render_settings)).image)
    s.dual_truncation.set_value(0.4)
    wait_dual_render(qtbot, w, truncation=0.4)
    # settings come back into the widgets (a project reopened): code by name or by style id
    s.set_values(st.replace(dual=st.dual.__class__("dual_tiny", "1", st.dual.weights, truncation=0.9)))
    assert s.dual_code.currentData() == "alpha.png" and s.dual_truncation.value() == pytest.approx(0.9)
    assert not s.dual_keep_colours.isChecked()
    assert not recorder.errors


def _request(w, st):
    from maskstudio.engine import RenderRequest

    kw = st.replace(output="dual").to_request(size_px=SIZE)
    return RenderRequest(np.array(w.doc.labels), w.exemplar, **kw)


def test_refine_panel_names_its_loss_and_runs_the_image2stylegan_pp_options(qtbot, make_window, dual_settings,
                                                                           recorder):
    w = make_window(settings=dual_settings)
    qtbot.waitUntil(lambda: w.sliders.groups["tools"].body.isEnabled(), timeout=RENDER_TIMEOUT_MS)
    assert w.sliders.loss_label.text().startswith("Refine loss: pixel MSE only")
    got = []
    w.tools.progress.connect(lambda pct, text: got.append(text))
    w.sliders.refine_noise.setChecked(True)
    w.sliders.refine_masked.setChecked(True)
    shown = []
    w.renderShown.connect(lambda r: shown.append(r) if isinstance(r.tag, tuple) and r.tag[:1] == ("tool",) else None)
    with qtbot.waitSignal(w.toolFinished, timeout=RENDER_TIMEOUT_MS) as sig:
        w.tools.refine(np.array(w.doc.labels), w.exemplar, steps=4, noise=True, masked=True, size_px=SIZE)
    out = sig.args[0]
    assert out.error is None and out.latent.shape == (1, 6, 512) and out.noise is not None
    # the window renders the refined W+ with its optimised noise maps through an ordinary request
    qtbot.waitUntil(lambda: bool(shown), timeout=RENDER_TIMEOUT_MS)
    assert shown[-1].ok and shown[-1].image.ndim == 3 and shown[-1].image.shape[2] == 3
    assert any(t.startswith("noise step") for t in got) and any(t.startswith("step") for t in got)
    assert not recorder.errors
