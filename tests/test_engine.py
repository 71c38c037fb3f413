"""Engine behaviour with small real networks (narrow configs, seeded random weights).

Models are written with checkpoints.save_checkpoint into a temporary models dir and found by
ModelSet exactly like installed ones. Nothing is mocked: the stage counts are the engine's own.
"""
from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import engine_models as em
from maskstudio.engine import (
    AgileParams,
    DualParams,
    Engine,
    Exemplar,
    ModelSet,
    RenderRequest,
    RenderResult,
)
from maskstudio.engine.pipeline import _resize_t, to_uint8_image
from maskstudio.engine.preview import PreviewScheduler
from maskstudio.errors import RenderError
from maskstudio.settings import Settings

SIZE = 64


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("engine-models")
    em.write_all(d)
    return d


def make_settings(models_dir: Path, tmp: Path | None = None) -> Settings:
    empty = (tmp or models_dir) / "no-shipped"
    return Settings(device="cpu", models_dir=models_dir, shipped_checkpoints=empty)


@pytest.fixture
def engine(models_dir):
    eng = Engine(make_settings(models_dir), style_size_px=SIZE, start_worker=False)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def inputs():
    labels, image = em.face_inputs(SIZE)
    return labels, Exemplar(image, labels, name="synthetic")


def req(labels, ex, **kw) -> RenderRequest:
    kw.setdefault("size_px", SIZE)
    return RenderRequest(labels, ex, **kw)


# -- discovery / availability --------------------------------------------------------------------
def test_modelset_finds_installed_models_and_skips_non_configs(models_dir, tmp_path):
    (models_dir / "dmn_tiny" / "install.json").write_text('{"arch": "maskgan_dmn"}')
    (models_dir / "junk").mkdir(exist_ok=True)
    (models_dir / "junk" / "junk.json").write_text("{not json")
    ms = ModelSet.from_settings(make_settings(models_dir))
    assert sorted(ms.models) == ["agile_enc_tiny", "agile_tiny", "dmn_tiny", "dual_tiny", "parser_tiny",
                                 "psp_tiny", "sg_tiny"]
    assert all(m.source == "user" for m in ms.models.values())
    assert any("junk.json" in str(p) for p, _ in ms.skipped)
    assert sorted(ms.boundaries) == ["age_w_boundary", "boundary_Smiling"]
    assert ms.first("encoder", "psp_encoder").id == "psp_tiny"


def test_unavailable_outputs_are_reported_not_faked(tmp_path):
    d = tmp_path / "only-dmn"
    em.write_dmn(d)
    eng = Engine(make_settings(d, tmp_path), style_size_px=SIZE, start_worker=False)
    av = eng.availability()
    assert av["face"].available and av["face"].models == ("dmn_tiny",)
    for out in ("photo", "agile", "dual", "parse"):
        assert not av[out].available and av[out].reason
    labels, image = em.face_inputs(SIZE)
    ex = Exemplar(image, labels)
    r = eng.render_sync(req(labels, ex, output="photo"))
    assert not r.ok and r.image is None
    assert r.error.startswith("photo: unavailable: no encoder installed")
    assert eng.stage_counts == {}  # nothing ran for an unavailable output
    r = eng.render_sync(req(labels, ex, output="dual", dual=DualParams("nope")))
    assert "unavailable" in r.error
    # an exemplar without a mask and no parser: a clear error asking for the mask
    r = eng.render_sync(req(labels, Exemplar(image)))
    assert not r.ok and "no face parser is installed" in r.error and "mask" in r.error
    with pytest.raises(RenderError, match="no StyleGAN2 photo generator"):
        eng.photo_generator()


def test_photo_generator_prefers_an_installed_stylegan_else_an_encoders_decoder(models_dir, tmp_path):
    from maskstudio.models.stylegan2 import StyleGAN2Generator

    eng = Engine(make_settings(models_dir), style_size_px=SIZE, start_worker=False)
    gen = eng.photo_generator()
    assert isinstance(gen, StyleGAN2Generator) and gen is eng.models.load("sg_tiny").module
    eng.close()
    d = tmp_path / "encoder-only"
    em.write_psp(d)
    eng2 = Engine(make_settings(d, tmp_path), style_size_px=SIZE, start_worker=False)
    assert eng2.photo_generator() is eng2.models.load("psp_tiny").module.decoder
    eng2.close()


def test_exemplar_without_mask_is_parsed_once(engine, inputs):
    labels, ex = inputs
    bare = Exemplar(np.array(ex.image), name="bare")
    r1 = engine.render_sync(req(labels, bare))
    assert r1.ok, r1.error
    assert r1.stages_run == ["parse", "style", "face"]
    r2 = engine.render_sync(req(labels, bare))
    assert r2.stages_run == [] and np.array_equal(r1.image, r2.image)


# -- caching -----------------------------------------------------------------------------------
def test_stage_caching_counts(engine, inputs):
    labels, ex = inputs
    r = engine.render_sync(req(labels, ex))
    assert r.ok and r.image.shape == (SIZE, SIZE, 3) and r.image.dtype == np.uint8
    assert engine.stage_counts == {"style": 1, "face": 1}
    # same request: nothing runs, same pixels
    r2 = engine.render_sync(req(labels, ex))
    assert r2.stages_run == [] and np.array_equal(r.image, r2.image)
    # a stroke: only the generator runs (exemplar style is cached)
    painted = labels.copy()
    painted[10:14, 10:30] = 13
    r3 = engine.render_sync(req(painted, ex))
    assert r3.stages_run == ["face"] and not np.array_equal(r.image, r3.image)
    assert engine.stage_counts == {"style": 1, "face": 2}
    # another exemplar: style runs again (once)
    ex2 = Exemplar(np.ascontiguousarray(ex.image[::-1]), labels)
    assert engine.render_sync(req(painted, ex2)).stages_run == ["style", "face"]
    # the latent chain: invert once per face, edits re-run only edit + photo
    p1 = engine.render_sync(req(painted, ex, output="photo"))
    assert p1.ok, p1.error
    assert p1.stages_run == ["invert", "edit", "photo"]
    p2 = engine.render_sync(req(painted, ex, output="photo", edits={"age_w_boundary": 2.0}))
    assert p2.stages_run == ["edit", "photo"] and not np.array_equal(p1.image, p2.image)
    p3 = engine.render_sync(req(painted, ex, output="photo", edits={"boundary_Smiling": -1.5}))
    assert p3.stages_run == ["edit", "photo"]
    # a zero edit is no edit: back to the cached unedited render
    assert engine.render_sync(req(painted, ex, output="photo", edits={"age_w_boundary": 0.0})).stages_run == []
    # dual slider moves: only the dual stage
    d1 = engine.render_sync(req(painted, ex, output="dual", dual=DualParams("dual_tiny", "style0", (0.5,) * 8)))
    assert d1.ok, d1.error
    d2 = engine.render_sync(req(painted, ex, output="dual", dual=DualParams("dual_tiny", "style0", (0.9,) * 8)))
    assert d2.stages_run == ["dual"] and not np.array_equal(d1.image, d2.image)
    assert engine.stage_counts["invert"] == 1  # pSp inversion shared by photo and dual


def test_preview_reuses_exemplar_style_and_reports_size(models_dir, inputs):
    labels, ex = inputs
    eng = Engine(make_settings(models_dir), style_size_px=SIZE, start_worker=False)
    eng.preview = PreviewScheduler(1e9, sizes=(32, 64), initial_px=32)  # never too slow: grows
    r = eng.render_sync(req(labels, ex, preview=True))
    assert r.ok and r.preview and r.size_px == 32 and r.image.shape == (32, 32, 3)
    assert eng.preview_size_px == 64  # measured fast enough: the next preview is larger
    full = eng.render_sync(req(labels, ex))
    assert full.stages_run == ["face"] and full.size_px == SIZE  # style encoded once for both


def test_latent_preview_synthesis_layer_follows_measured_time(models_dir, inputs):
    """A latent slider drag stops synthesis at a reduced layer chosen from measured synthesis time;
    the release renders at the generator's full resolution."""
    labels, ex = inputs
    too_slow = Engine(make_settings(models_dir), style_size_px=SIZE, start_worker=False, synthesis_target_ms=1e-6)
    fast = Engine(make_settings(models_dir), style_size_px=SIZE, start_worker=False, synthesis_target_ms=1e9)
    try:
        gen = em.SG_CFG["size"]  # the tiny generator's resolution (below the 64² preview side)
        for eng, expect in ((too_slow, [16, 16, 16]), (fast, [gen, gen, gen])):
            eng.synthesis_preview = PreviewScheduler(eng.synthesis_preview.target_ms, sizes=(16, 32, 64),
                                                     initial_px=32)
            got = []
            for v in (0.5, 1.0, 1.5):
                r = eng.render_sync(req(labels, ex, output="photo", preview=True, edits={"age_w_boundary": v}))
                assert r.ok, r.error
                assert r.image.shape[:2] == (r.size_px, r.size_px)  # upscaled to the preview side
                got.append(r.synthesis_px)
            # too slow: one layer down per measured preview, to the smallest; fast: up to what the
            # preview side needs (the smallest power of two >= it), never above the generator
            assert got[1:] == expect[1:], got
            full = eng.render_sync(req(labels, ex, output="photo", edits={"age_w_boundary": 1.5}))
            assert full.ok and full.synthesis_px == gen
    finally:
        too_slow.close()
        fast.close()


def test_errors_are_values_and_requests_are_validated(engine, inputs):
    labels, ex = inputs
    with pytest.raises(RenderError, match="not a class"):
        RenderRequest(np.full((8, 8), 40, np.uint8), ex)
    with pytest.raises(RenderError, match="uint8"):
        RenderRequest(labels.astype(np.int32), ex)
    with pytest.raises(RenderError, match="needs agile"):
        RenderRequest(labels, ex, output="agile")
    r = engine.render_sync(req(labels, ex, output="photo", edits={"nonexistent": 1.0}))
    assert not r.ok and r.error.startswith("edit: unknown boundary 'nonexistent'")
    r = engine.render_sync(req(labels, ex, output="agile", agile=AgileParams("dual_tiny")))
    assert not r.ok and "not an AgileGAN" in r.error


# -- AgileGAN / DualStyleGAN semantics ---------------------------------------------------------
def test_agile_strength_blends_networks(engine, inputs):
    labels, ex = inputs
    a0 = engine.render_sync(req(labels, ex, output="agile", agile=AgileParams("agile_tiny", 0.0, "A"),
                                want_latent=True))
    b0 = engine.render_sync(req(labels, ex, output="agile", agile=AgileParams("agile_tiny", 0.0, "B")))
    a1 = engine.render_sync(req(labels, ex, output="agile", agile=AgileParams("agile_tiny", 1.0, "A")))
    b1 = engine.render_sync(req(labels, ex, output="agile", agile=AgileParams("agile_tiny", 1.0, "B")))
    assert all(r.ok for r in (a0, b0, a1, b1)), [r.error for r in (a0, b0, a1, b1)]
    # strength 0 = every layer and noise map is the photo generator's: both branches are the photo
    assert np.array_equal(a0.image, b0.image)
    with torch.inference_mode():
        photo = engine.models.load("sg_tiny").module.synthesis(torch.from_numpy(a0.latent), randomize_noise=False)
        photo = photo.clamp(-1, 1)
    photo = to_uint8_image(_resize_t(photo, SIZE))
    assert np.abs(a0.image.astype(int) - photo.astype(int)).max() <= 1
    assert not np.array_equal(a1.image, b1.image) and not np.array_equal(a0.image, a1.image)
    # morph scales the strength: morph 0 at strength 1 == strength 0
    m0 = engine.render_sync(req(labels, ex, output="agile", agile=AgileParams("agile_tiny", 1.0, "A"), morph=0.0))
    assert np.array_equal(m0.image, a0.image)


def test_dual_morph_zero_is_the_intrinsic_photo(engine, inputs):
    labels, ex = inputs
    r = engine.render_sync(req(labels, ex, output="dual", want_latent=True,
                               dual=DualParams("dual_tiny", "1", (0.75,) * 8), morph=0.0))
    assert r.ok, r.error
    gen = engine.models.load("dual_tiny").module.generator
    with torch.inference_mode():
        img = gen.synthesis(torch.from_numpy(r.latent), randomize_noise=False).clamp(-1, 1)
    expect = to_uint8_image(_resize_t(img, SIZE))
    assert np.array_equal(r.image, expect)
    assert engine.styles()["dual"] == {"dual_tiny": ["style0", "style1"]}


# -- worker: latest wins, cancellation ---------------------------------------------------------
def _strokes(labels, n):
    out = []
    for i in range(n):
        m = labels.copy()
        m[(i * 3) % SIZE, :] = 13
        m[:, (i * 7) % SIZE] = 1
        out.append(m)
    return out


def test_latest_wins_under_a_burst_of_100_requests(models_dir, inputs):
    labels, ex = inputs
    results: list[RenderResult] = []
    with Engine(make_settings(models_dir), style_size_px=SIZE, callback=results.append) as eng:
        masks = _strokes(labels, 100)
        t0 = time.perf_counter()
        ids = [eng.submit(req(m, ex)) for m in masks]
        submit_s = time.perf_counter() - t0
        assert eng.wait_idle(60)
        assert ids == sorted(ids) and len(set(ids)) == 100
        assert results, "no result delivered"
        assert results[-1].request_id == ids[-1]
        assert [r.request_id for r in results] == sorted(r.request_id for r in results)
        w = eng.worker
        assert w.submitted == 100 and w.completed == len(results)
        assert w.dropped + w.cancelled + w.completed == 100
        assert len(results) < 50  # most of the burst never ran
        expect = eng.render_sync(req(masks[-1], ex))
        assert np.array_equal(results[-1].image, expect.image)
        assert submit_s < 5.0  # submit never waits for a render (generous bound, not a benchmark)


@contextlib.contextmanager
def _running_held(eng: Engine, request: RenderRequest):
    """Hold the engine's render lock, submit ``request`` and wait until the worker has taken it
    (it blocks right after taking the job); the body runs with the lock held. Yields the job id."""
    eng._lock.acquire()
    try:
        job_id = eng.submit(request)
        _wait_running(eng, job_id)
        yield job_id
    finally:
        eng._lock.release()


def _wait_running(eng: Engine, job_id: int) -> None:
    for _ in range(2000):
        if eng.worker._running_id == job_id:
            return
        time.sleep(0.005)
    raise AssertionError("worker never picked the job")


def test_a_newer_request_cancels_the_running_full_render(models_dir, inputs):
    labels, ex = inputs
    results: list[RenderResult] = []
    with Engine(make_settings(models_dir), style_size_px=SIZE, callback=results.append) as eng:
        a, b = _strokes(labels, 2)
        with _running_held(eng, req(a, ex)):
            idb = eng.submit(req(b, ex))
        assert eng.wait_idle(30)
        assert [r.request_id for r in results] == [idb]
        assert eng.worker.cancelled == 1
        # cancellation happened before any stage of A ran: the exemplar style ran once, for B
        assert eng.stage_counts == {"style": 1, "face": 1}


def test_previews_are_not_cancelled_and_newer_pending_replaces_older(models_dir, inputs):
    labels, ex = inputs
    results: list[RenderResult] = []
    with Engine(make_settings(models_dir), style_size_px=SIZE, callback=results.append) as eng:
        a, b, c = _strokes(labels, 3)
        with _running_held(eng, req(a, ex, preview=True)) as ida:
            eng.submit(req(b, ex))          # pending
            idc = eng.submit(req(c, ex))    # replaces b; a is a preview: it finishes
        assert eng.wait_idle(30)
        assert [r.request_id for r in results] == [ida, idc]
        assert results[0].preview and not results[1].preview
        assert eng.worker.dropped == 1 and eng.worker.cancelled == 0


def test_cancel_stops_running_and_pending(models_dir, inputs):
    labels, ex = inputs
    results: list[RenderResult] = []
    with Engine(make_settings(models_dir), style_size_px=SIZE, callback=results.append) as eng:
        a, b = _strokes(labels, 2)
        with _running_held(eng, req(a, ex, preview=True)):
            eng.submit(req(b, ex))
            eng.cancel()                    # explicit cancel: even the running preview stops
        assert eng.wait_idle(30)
        assert results == [] and eng.worker.dropped == 1 and eng.worker.cancelled == 1
        assert eng.stage_counts == {}


def test_callback_errors_do_not_kill_the_worker(models_dir, inputs, caplog):
    labels, ex = inputs
    got: list[int] = []

    def cb(r: RenderResult) -> None:
        got.append(r.request_id)
        if len(got) == 1:
            raise ValueError("broken callback")

    with Engine(make_settings(models_dir), style_size_px=SIZE, callback=cb) as eng:
        i1 = eng.submit(req(labels, ex))
        assert eng.wait_idle(30)
        i2 = eng.submit(req(_strokes(labels, 1)[0], ex))
        assert eng.wait_idle(30)
    assert got == [i1, i2]
    logged = [r for r in caplog.records if r.name == "maskstudio.engine.worker" and r.exc_info]
    assert logged and "broken callback" in str(logged[0].exc_info[1])


# -- device policy: out of memory -> CPU float32 -----------------------------------------------
def test_out_of_memory_falls_back_to_cpu_float32(models_dir, inputs):
    """A real ``torch.OutOfMemoryError`` raised inside the DMN (by a forward hook on its first
    conv) while the policy runs in reduced precision: the engine switches to CPU float32,
    reloads the models from disk and returns the same image a plain float32 engine makes."""
    labels, ex = inputs
    eng = Engine(make_settings(models_dir), style_size_px=SIZE, precision="bf16", start_worker=False)
    assert eng.policy.can_fall_back
    net = eng.models.load("dmn_tiny").module
    assert next(net.parameters()).dtype == torch.bfloat16
    fired = []

    def oom(module, args):
        fired.append(1)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated by a hook)")

    net.model[1].register_forward_pre_hook(oom)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        r = eng.render_sync(req(labels, ex))
    assert fired and r.ok, r.error
    assert len(r.warnings) == 1 and "continuing on CPU float32" in r.warnings[0]
    assert eng.policy.precision == "fp32" and eng.policy.fallbacks == 1 and not eng.policy.can_fall_back
    assert r.dtype == "float32"
    ref = Engine(make_settings(models_dir), style_size_px=SIZE, start_worker=False).render_sync(req(labels, ex))
    assert np.array_equal(r.image, ref.image)


def test_out_of_memory_on_cpu_float32_is_an_error_value(models_dir, inputs):
    labels, ex = inputs
    eng = Engine(make_settings(models_dir), style_size_px=SIZE, start_worker=False)
    net = eng.models.load("dmn_tiny").module

    def oom(module, args):
        raise torch.OutOfMemoryError("out of memory (simulated by a hook)")

    net.model[1].register_forward_pre_hook(oom)
    r = eng.render_sync(req(labels, ex))
    assert not r.ok and r.error.startswith("face: out of memory (out of memory (simulated")
    assert r.warnings == []


def test_device_policy_refuses_cuda_without_cuda():
    from maskstudio.engine.device import DevicePolicy
    from maskstudio.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no usable CUDA"):
        DevicePolicy("cuda")
    p = DevicePolicy("auto")
    assert p.device.type == "cpu" and p.dtype_for("maskgan_dmn") == torch.float32 and not p.can_fall_back


# -- threads --------------------------------------------------------------------------------------
def test_render_sync_and_worker_share_caches_safely(models_dir, inputs):
    labels, ex = inputs
    results: list[RenderResult] = []
    with Engine(make_settings(models_dir), style_size_px=SIZE, callback=results.append) as eng:
        masks = _strokes(labels, 6)
        errors: list[str] = []

        def sync_side():
            for m in masks[3:]:
                r = eng.render_sync(req(m, ex))
                if not r.ok:
                    errors.append(r.error)

        t = threading.Thread(target=sync_side)
        t.start()
        for m in masks[:3]:
            eng.submit(req(m, ex))
        t.join(60)
        assert eng.wait_idle(60)
        assert not errors and all(r.ok for r in results)
        assert eng.stage_counts["style"] == 1


# -- preview scheduler ---------------------------------------------------------------------------
def test_preview_size_adapts_to_measured_latency():
    s = PreviewScheduler(100.0, sizes=(128, 192, 256, 384, 512), initial_px=256, alpha=1.0)
    assert s.size_px == 256
    assert s.record(256, 150.0) == 192      # too slow: one step down
    assert s.record(192, 90.0) == 192       # within target; 256 predicted (150+160)/2: stay
    assert s.record(192, 40.0) == 192       # 256: (155+71)/2 = 113 ms, still too slow
    assert s.record(192, 40.0) == 192       # 92 ms
    assert s.record(192, 40.0) == 256       # 82 ms <= 85: the old slow measurement has decayed
    s2 = PreviewScheduler(100.0, sizes=(128, 256), initial_px=128, alpha=1.0)
    assert s2.record(128, 10.0) == 256      # 4x the pixels -> 40 ms predicted: grow
    assert s2.record(256, 500.0) == 128     # slow frame: shrink
    assert s2.record(256, 5.0) == 128       # a late result of another size only updates its estimate
    s3 = PreviewScheduler(100.0, sizes=(128, 256, 512), initial_px=512, alpha=1.0)
    s3.set_max(256)
    assert s3.size_px == 256                # never above the full render size


# -- given latents and Image2StyleGAN refinement --------------------------------------------------
def test_render_a_given_latent_with_edits(engine, inputs):
    labels, ex = inputs
    r = engine.render_sync(req(labels, ex, output="photo", want_latent=True))
    assert r.ok, r.error
    again = engine.render_sync(req(labels, ex, output="photo", latent=r.latent))
    assert again.ok and again.stages_run == ["edit", "photo"] and np.array_equal(again.image, r.image)
    edited = engine.render_sync(req(labels, ex, output="photo", latent=r.latent, edits={"age_w_boundary": 1.0}))
    assert edited.ok and not np.array_equal(edited.image, r.image)
    z_edit = engine.render_sync(req(labels, ex, output="photo", latent=r.latent, edits={"boundary_Smiling": 1.0}))
    assert not z_edit.ok and "Z-space boundary" in z_edit.error
    with pytest.raises(RenderError, match="output 'face'"):
        RenderRequest(labels, ex, latent=r.latent)


def test_refine_embedding_lowers_the_pixel_loss_and_can_be_cancelled(engine, inputs):
    labels, ex = inputs
    losses: list[float] = []

    def progress(p):
        losses.append(p.loss)

    w, cancelled = engine.refine_embedding(req(labels, ex, output="photo"), steps=12, progress=progress, lr=0.05)
    assert not cancelled and w.shape == (1, em.N_LATENT, em.SG_DIM) and len(losses) == 12
    assert min(losses[1:]) < losses[0]
    r = engine.render_sync(req(labels, ex, output="photo", latent=w))
    assert r.ok, r.error
    w2, cancelled = engine.refine_embedding(req(labels, ex, output="photo"), steps=50,
                                            progress=lambda p: p.step >= 3)
    assert cancelled and w2.shape == w.shape


def test_user_models_shadow_shipped_and_are_preferred(tmp_path):
    user, shipped = tmp_path / "user", tmp_path / "shipped"
    em.write_dmn(user, "dmn_user")
    shipped.mkdir()
    em.write_dmn(shipped, "dmn_starter", seed=1)
    for f in (shipped / "dmn_starter").iterdir():  # shipped checkpoints lie flat in checkpoints/
        f.rename(shipped / f.name)
    em.write_dmn(user, "dmn_starter", seed=2)       # same id installed by the user: shadows
    ms = ModelSet.from_settings(Settings(device="cpu", models_dir=user, shipped_checkpoints=shipped))
    assert ms.get("dmn_starter").source == "user"
    assert ms.first("dmn").source == "user"
    ms.select("dmn", "dmn_user")
    assert ms.first("dmn").id == "dmn_user"
    with pytest.raises(RenderError, match="cannot serve as parser"):
        ms.select("parser", "dmn_user")
    import shutil

    shutil.rmtree(user)
    ms.scan()
    assert ms.first("dmn").id == "dmn_starter" and ms.first("dmn").source == "shipped"


def test_dmn_native_size_generates_small_and_upscales(tmp_path):
    d = tmp_path / "native"
    em.write_dmn(d, "dmn_native", meta={"native_size_px": 32})
    eng = Engine(make_settings(d, tmp_path), start_worker=False)  # style size from the checkpoint
    assert eng.style_size_for(eng.models.first("dmn")) == 32
    labels, image = em.face_inputs(SIZE)
    ex = Exemplar(image, labels)
    small = eng.render_sync(req(labels, ex, size_px=32))
    assert small.ok and small.stages_run == ["style", "face"] and small.image.shape == (32, 32, 3)
    big = eng.render_sync(req(labels, ex, size_px=SIZE))
    assert big.ok and big.stages_run == [] and big.image.shape == (SIZE, SIZE, 3)  # same 32² face, upscaled
    from PIL import Image

    approx = np.asarray(Image.fromarray(small.image).resize((SIZE, SIZE), Image.BILINEAR)).astype(int)
    assert np.abs(approx - big.image.astype(int)).mean() < 6


def test_synthesis_matches_the_generator_and_stops_when_cancelled(engine):
    from maskstudio.engine.worker import CancelToken, Cancelled

    gen = engine.models.load("sg_tiny").module
    w = torch.randn(1, em.N_LATENT, em.SG_DIM, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = gen.synthesis(w, randomize_noise=False)
        assert torch.equal(gen.synthesis(w, randomize_noise=False, check=lambda: None), full)
        low = gen.synthesis(w, randomize_noise=False, max_res=16)
        assert low.shape[-1] == 16
        # max_res=16 is the render of the same network cut after its 16 px layers
        from maskstudio.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

        small = StyleGAN2Generator(StyleGAN2Config(**{**em.SG_CFG, "size": 16}))
        small.load_state_dict({k: v for k, v in gen.state_dict().items() if k in small.state_dict()})
        assert torch.allclose(small.synthesis(w[:, :small.n_latent], randomize_noise=False), low, atol=1e-6)
        token, calls = CancelToken(), []

        def check():
            calls.append(1)
            if len(calls) == 2:
                token.cancel()
            token.check()

        with pytest.raises(Cancelled):
            gen.synthesis(w, randomize_noise=False, check=check)
    assert len(calls) == 2
