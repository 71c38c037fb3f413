"""Latent operations (InterFaceGAN, Image2StyleGAN) and direction-file loading."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
import torch.serialization as ts

from maskstudio.errors import LatentFileError
from maskstudio.models.latent_ops import (
    Direction,
    EmbedProgress,
    apply_direction,
    crossover,
    direction_name_and_space,
    edit_w,
    edit_z,
    embed,
    expression_transfer,
    load_direction,
    load_direction_folder,
    mean_latent,
    morph,
)
from maskstudio.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

# ------------------------------------------------------------------ InterFaceGAN maths


def test_edit_z_hand_computed():
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    n = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    # z.n = 2, target distance 3 -> z + (3 - 2) n
    assert torch.equal(edit_z(z, n, 3.0), torch.tensor([[1.0, 3.0, 3.0, 4.0]]))
    # distance 0 projects onto the hyperplane; negative distances cross it
    assert torch.equal(edit_z(z, n, 0.0), torch.tensor([[1.0, 0.0, 3.0, 4.0]]))
    n2 = torch.tensor([0.6, 0.0, 0.8, 0.0])  # unit, 1-D accepted
    # z.n2 = 0.6 + 2.4 = 3.0; d = -1 -> z + (-4) n2 = [1-2.4, 2, 3-3.2, 4]
    torch.testing.assert_close(edit_z(z, n2, -1.0), torch.tensor([[-1.4, 2.0, -0.2, 4.0]]))


def test_edit_z_reaches_requested_distance_per_sample():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 512, generator=g)
    n = torch.randn(1, 512, generator=g)
    n = n / n.norm()
    d = torch.tensor([-3.0, 0.5, 3.0])
    out = edit_z(z, n, d)
    torch.testing.assert_close((out * n).sum(1), d, rtol=0, atol=1e-5)
    # the component orthogonal to n is unchanged
    orth = lambda v: v - (v * n).sum(1, keepdim=True) * n  # noqa: E731
    torch.testing.assert_close(orth(out), orth(z), rtol=0, atol=1e-5)
    with pytest.raises(ValueError):
        edit_z(torch.zeros(2, 18, 512), n, 1.0)


def test_edit_w_rules():
    w = torch.zeros(2, 4)
    n = torch.tensor([[1.0, 0.0, -1.0, 2.0]])
    assert torch.equal(edit_w(w, n, 2.0), torch.tensor([[2.0, 0.0, -2.0, 4.0]] * 2))
    # per-sample factor
    out = edit_w(w, n, torch.tensor([1.0, -1.0]))
    assert torch.equal(out, torch.stack([n[0], -n[0]]))
    wp = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    every = edit_w(wp, n, 0.5)
    assert torch.equal(every, wp + 0.5 * n.reshape(1, 1, 4))
    some = edit_w(wp, n, 0.5, rows=[0, 2])
    assert torch.equal(some[:, 1], wp[:, 1])
    assert torch.equal(some[:, [0, 2]], wp[:, [0, 2]] + 0.5 * n.reshape(1, 1, 4))
    per_row = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    assert torch.equal(edit_w(wp, per_row, -1.0), wp - per_row)
    assert torch.equal(edit_w(wp, per_row, 2.0, rows=[1])[:, 1], wp[:, 1] + 2 * per_row[:, 1])
    assert torch.equal(edit_w(wp, per_row, 2.0, rows=[1])[:, 0], wp[:, 0])
    with pytest.raises(ValueError):
        edit_w(wp, torch.zeros(1, 5), 1.0)
    with pytest.raises(ValueError):
        edit_w(w, n, 1.0, rows=[0])
    with pytest.raises(IndexError):
        edit_w(wp, n, 1.0, rows=[3])


def test_apply_direction_dispatch():
    n = torch.zeros(1, 4)
    n[0, 1] = 1.0
    dz = Direction("smile", "z", n)
    dw = Direction("smile", "w", n)
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert torch.equal(apply_direction(z, dz, 3.0), edit_z(z, n, 3.0))
    assert torch.equal(apply_direction(z, dw, 3.0), torch.tensor([[1.0, 5.0, 3.0, 4.0]]))
    # Z+ codes: the hyperplane rule row by row, on the selected rows only
    zp = torch.stack([z[0], 2 * z[0]]).unsqueeze(0)  # [1, 2, 4]
    out = apply_direction(zp, dz, 1.0, rows=[1])
    assert torch.equal(out[0, 0], zp[0, 0])
    assert torch.equal(out[0, 1], torch.tensor([2.0, 1.0, 6.0, 8.0]))
    with pytest.raises(ValueError):
        Direction("x", "wplus", torch.zeros(1, 4))
    with pytest.raises(ValueError):
        Direction("x", "s", torch.zeros(1, 4))


# ------------------------------------------------------------------ Image2StyleGAN maths


def test_morph_crossover_expression():
    w1 = torch.full((1, 18, 2), 1.0)
    w2 = torch.full((1, 18, 2), 3.0)
    w3 = torch.full((1, 18, 2), 4.0)
    assert torch.equal(morph(w1, w2, 1.0), w1)
    assert torch.equal(morph(w1, w2, 0.0), w2)
    assert torch.equal(morph(w1, w2, 0.25), torch.full((1, 18, 2), 0.25 * 1 + 0.75 * 3))
    x = crossover(w1, w2)
    assert torch.equal(x[:, :9], w1[:, :9]) and torch.equal(x[:, 9:], w2[:, 9:])
    y = crossover(w1, w2, split=4)
    assert torch.equal(y[:, :4], w1[:, :4]) and torch.equal(y[:, 4:], w2[:, 4:])
    assert torch.equal(crossover(w1, w2, split=0), w2)
    # w1 + lam (w3 - w2) = 1 + 0.5 * (4 - 3)
    assert torch.equal(expression_transfer(w1, w2, w3, 0.5), torch.full((1, 18, 2), 1.5))
    with pytest.raises(ValueError):
        crossover(w1, w2, split=19)
    with pytest.raises(ValueError):
        morph(w1, w2[:, :3], 0.5)


# ------------------------------------------------------------------ direction files


def test_names_from_file_names():
    assert direction_name_and_space("boundary_Smiling.npy") == ("Smiling", "z")
    assert direction_name_and_space("stylegan_ffhq_age_w_boundary.npy") == ("stylegan_ffhq_age", "w")
    assert direction_name_and_space("pose_boundary.npy") == ("pose", "z")
    assert direction_name_and_space("age.pt") == ("age", None)


def test_load_npy_boundaries(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((1, 512))
    v /= np.linalg.norm(v)
    np.save(tmp_path / "boundary_Smiling.npy", v)  # float64 as published
    np.save(tmp_path / "age_w_boundary.npy", v.astype(np.float32))
    np.save(tmp_path / "flat.npy", v[0])
    d = load_direction(tmp_path / "boundary_Smiling.npy")
    assert (d.name, d.space, d.vector.dtype, tuple(d.vector.shape)) == ("Smiling", "z", torch.float32, (1, 512))
    assert torch.equal(d.vector, torch.from_numpy(v.astype(np.float32)))
    assert d.source == str(tmp_path / "boundary_Smiling.npy")
    w = load_direction(tmp_path / "age_w_boundary.npy")
    assert (w.name, w.space) == ("age", "w")
    assert load_direction(tmp_path / "flat.npy").vector.shape == (1, 512)
    assert load_direction(tmp_path / "flat.npy", space="w", name="Flat").space == "w"


def test_load_torch_directions_cpu_and_cuda_saved(tmp_path):
    t = torch.randn(1, 512)
    torch.save(t, tmp_path / "smile.pt")
    d = load_direction(tmp_path / "smile.pt")
    assert (d.name, d.space) == ("smile", "w") and torch.equal(d.vector, t)
    pose = torch.randn(1, 18, 512)
    torch.save(pose, tmp_path / "pose.pt")
    p = load_direction(tmp_path / "pose.pt", n_latent=18)
    assert p.space == "wplus" and torch.equal(p.vector, pose)
    torch.save({"direction": t.double()}, tmp_path / "wrapped.pth")
    assert torch.equal(load_direction(tmp_path / "wrapped.pth").vector, t)

    # A file whose storages are tagged "cuda:0", exactly what torch.save writes for a CUDA
    # tensor (e4e's age.pt / pose.pt). Loading it without map_location fails on a CPU-only
    # machine; load_direction must map it to the CPU.
    def tag_cuda(storage):
        return "cuda:0"

    ts.register_package(0, tag_cuda, lambda obj, location: None)
    try:
        torch.save(t, tmp_path / "age.pt")
    finally:
        ts._package_registry[:] = [e for e in ts._package_registry if e[1] is not tag_cuda]
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "age.pt", weights_only=True)
    a = load_direction(tmp_path / "age.pt")
    assert a.vector.device.type == "cpu" and torch.equal(a.vector, t)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _bad_files(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros((1, 511)) + 1)
    np.save(tmp_path / "three.npy", np.ones((2, 2, 512)))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "text.npy", np.array(["abc"]))
    np.save(tmp_path / "nan.npy", np.full((1, 512), np.nan))
    np.save(tmp_path / "zero.npy", np.zeros((1, 512)))
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    torch.save(torch.randn(1, 18, 512), tmp_path / "rows.pt")
    torch.save(torch.randn(1, 512) > 0, tmp_path / "bools.pt")
    torch.save({"a": torch.randn(1, 512), "b": torch.randn(1, 512)}, tmp_path / "two.pt")
    torch.save(_Exploit(tmp_path / "pwned"), tmp_path / "exploit.pt")
    torch.save(torch.randn(1, 512), tmp_path / "trunc_src.pt")
    data = (tmp_path / "trunc_src.pt").read_bytes()
    (tmp_path / "trunc_src.pt").unlink()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("hello")


@pytest.mark.parametrize("fname, problem", [
    ("short.npy", "shape [1, 511]"),
    ("three.npy", "shape [2, 2, 512]"),
    ("obj.npy", "pickled Python objects"),
    ("text.npy", "real numbers"),
    ("nan.npy", "NaN"),
    ("zero.npy", "all zeros"),
    ("garbage.npy", "cannot read"),
    ("bools.pt", "real numbers"),
    ("two.pt", "expected a tensor"),
    ("exploit.pt", "refused"),
    ("truncated.pt", "not a readable"),
    ("notes.txt", "unsupported"),
    ("missing.npy", "no such file"),
])
def test_bad_direction_files_name_the_file(tmp_path, fname, problem):
    _bad_files(tmp_path)
    with pytest.raises(LatentFileError) as info:
        load_direction(tmp_path / fname)
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / fname) + ": "), msg
    assert problem in msg, msg
    assert not (tmp_path / "pwned").exists()


def test_wplus_row_count_and_space_mismatch(tmp_path):
    torch.save(torch.randn(1, 14, 512), tmp_path / "pose.pt")
    with pytest.raises(LatentFileError, match="14 rows"):
        load_direction(tmp_path / "pose.pt", n_latent=18)
    with pytest.raises(LatentFileError, match="does not fit"):
        load_direction(tmp_path / "pose.pt", space="z")


def test_load_folder(tmp_path):
    v = np.eye(1, 512)
    np.save(tmp_path / "boundary_Smiling.npy", v)
    np.save(tmp_path / "age_w_boundary.npy", v)
    torch.save(torch.randn(1, 18, 512), tmp_path / "pose.pt")
    (tmp_path / "readme.txt").write_text("ignored")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "nested.npy", v)  # not recursive
    dirs, problems = load_direction_folder(tmp_path)
    assert problems == []
    assert sorted(dirs) == ["age_w_boundary", "boundary_Smiling", "pose"]
    assert [(dirs[k].name, dirs[k].space) for k in sorted(dirs)] == [
        ("age", "w"), ("Smiling", "z"), ("pose", "wplus")]
    np.save(tmp_path / "bad.npy", np.ones((3,)))
    torch.save(torch.randn(1, 512), tmp_path / "pose.pth")  # same stem as pose.pt
    with pytest.raises(LatentFileError, match="bad.npy"):
        load_direction_folder(tmp_path)
    dirs, problems = load_direction_folder(tmp_path, strict=False)
    assert sorted(dirs) == ["age_w_boundary", "boundary_Smiling", "pose"]
    msgs = sorted(str(p) for p in problems)
    assert len(msgs) == 2 and "bad.npy" in msgs[0] and "duplicate" in msgs[1]
    with pytest.raises(LatentFileError, match="not a folder"):
        load_direction_folder(tmp_path / "nope")


# ------------------------------------------------------------------ embedding (tiny StyleGAN2)


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    cfg = StyleGAN2Config(size=16, style_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8})
    return StyleGAN2Generator(cfg).eval()


def _target(g):
    gen = torch.Generator().manual_seed(3)
    w = g.get_latent(torch.randn(1, 32, generator=gen)).detach()
    wplus = w.unsqueeze(1).repeat(1, g.n_latent, 1) + 0.3 * torch.randn(1, g.n_latent, 32, generator=gen)
    with torch.no_grad():
        img, _ = g([wplus], input_is_latent=True, randomize_noise=False)
    return img


def test_embed_reduces_loss_and_leaves_generator_alone(tiny_generator):
    g = tiny_generator
    before = {k: v.clone() for k, v in g.state_dict().items()}
    target = _target(g)
    seen = []
    res = embed(g, target, steps=40, callback=lambda p: seen.append(p), lr=0.05, n_mean=256)
    assert not res.cancelled and len(res.losses) == 40 and len(seen) == 40
    assert seen[-1] == EmbedProgress(40, 40, res.losses[-1]) and seen[-1].fraction == 1.0
    assert res.wplus.shape == (1, g.n_latent, 32) and not res.wplus.requires_grad
    start = mean_latent(g, 256, 0).unsqueeze(1).repeat(1, g.n_latent, 1)
    with torch.no_grad():
        start_img, _ = g([start], input_is_latent=True, randomize_noise=False)
    start_loss = torch.nn.functional.mse_loss(start_img, target).item()
    assert res.losses[0] == pytest.approx(start_loss, rel=1e-5)  # starts from the mean latent
    final = torch.nn.functional.mse_loss(res.image, target).item()
    assert final < 0.5 * start_loss, (start_loss, final)
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())
    assert all(p.grad is None for p in g.parameters())


def test_embed_cancel_and_custom_losses(tiny_generator):
    g = tiny_generator
    target = _target(g)
    res = embed(g, target, steps=50, callback=lambda p: p.step >= 3, n_mean=64)
    assert res.cancelled and len(res.losses) == 3
    calls = []

    def l1(img, tgt):
        calls.append(img.shape)
        return (img - tgt).abs().mean()

    res = embed(g, target, steps=5, loss_fn=l1, n_mean=64)
    assert len(calls) == 6 and calls[0] == (1, 3, 16, 16)  # 5 steps + the final score
    # perceptual features from a given network, and a smaller target (output is resized)
    feat = torch.nn.Conv2d(3, 4, 3)
    torch.nn.init.normal_(feat.weight)
    small = torch.nn.functional.avg_pool2d(target, 2)
    res = embed(g, small, steps=15, feature_net=lambda x: [feat(x), feat(x).relu()],
                perceptual_weight=0.1, lr=0.05, n_mean=64)
    assert res.losses[-1] < res.losses[0]
    with pytest.raises(ValueError):
        embed(g, target[0], steps=1)


# ------------------------------------------------------------------ Image2StyleGAN(++) loss and stages


def test_perceptual_loss_on_tiny_random_vgg_features(tiny_generator):
    from maskstudio.models.latent_ops import image2stylegan_loss
    from maskstudio.models.vgg import VGG16Config, VGG16Features

    torch.manual_seed(0)
    vgg = VGG16Features(VGG16Config(widths=(2, 3, 4, 5, 6))).eval()
    g = torch.Generator().manual_seed(4)
    img, target = (torch.rand(1, 3, 16, 16, generator=g) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        got = image2stylegan_loss(img, target, feature_net=vgg)
        expect = torch.nn.functional.mse_loss(img, target) + sum(
            torch.nn.functional.mse_loss(a, b) for a, b in zip(vgg(img), vgg(target)))
        assert len(vgg(img)) == 4  # conv1_1, conv1_2, conv3_2, conv4_2
        torch.testing.assert_close(got, expect, rtol=1e-6, atol=0)
        assert float(got) > float(torch.nn.functional.mse_loss(img, target))  # the VGG term counts
        # masked: what lies outside the mask does not matter, in either term
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., 4:12, 4:12] = 1
        other = target.clone()
        other[..., :4, :] = -target[..., :4, :]
        a = image2stylegan_loss(img, target, feature_net=vgg, mask=mask)
        b = image2stylegan_loss(img, other, feature_net=vgg, mask=mask)
        assert torch.equal(a, b) and not torch.equal(image2stylegan_loss(img, other, feature_net=vgg), got)
    # the embedding optimises it: the VGG loss falls
    res = embed(tiny_generator, _target(tiny_generator), steps=15, feature_net=vgg, lr=0.05, n_mean=64)
    assert res.losses[-1] < 0.7 * res.losses[0]


def test_noise_optimisation_lowers_the_loss_further_than_wplus_alone(tiny_generator):
    import copy

    g = copy.deepcopy(tiny_generator)
    with torch.no_grad():  # a generator whose noise inputs matter (trained ones have non-zero weights)
        for mod in g.modules():
            if type(mod).__name__ == "NoiseInjection":
                mod.weight.fill_(0.5)
        gen = torch.Generator().manual_seed(7)
        w = g.get_latent(torch.randn(1, 32, generator=gen)).unsqueeze(1).repeat(1, g.n_latent, 1)
        target, _ = g([w], input_is_latent=True, randomize_noise=True, generator=gen)  # other noise
    seen = []
    plain = embed(g, target, steps=30, lr=0.05, n_mean=64)
    both = embed(g, target, steps=30, lr=0.05, n_mean=64, noise_steps=30, callback=seen.append)
    assert torch.equal(plain.wplus, both.wplus)  # the W+ stage is the same; noise comes after
    assert both.noise is not None and len(both.noise) == g.num_layers and plain.noise is None
    mse_plain = torch.nn.functional.mse_loss(plain.image, target).item()
    mse_both = torch.nn.functional.mse_loss(both.image, target).item()
    assert mse_both < 0.8 * mse_plain, (mse_plain, mse_both)
    assert [p.stage for p in seen] == ["wplus"] * 30 + ["noise"] * 30 and seen[-1].step == seen[-1].steps == 60
    # the stored maps are untouched; the result's maps reproduce its image
    assert all(not torch.equal(a, getattr(g.noises, f"noise_{i}")) for i, a in enumerate(both.noise[-2:], g.num_layers - 2))
    with torch.no_grad():
        again, _ = g([both.wplus], input_is_latent=True, noise=both.noise)
    assert torch.equal(again, both.image)
    # cancelling inside the noise stage keeps the best maps so far
    part = embed(g, target, steps=5, n_mean=64, noise_steps=20, callback=lambda p: p.stage == "noise" and p.step >= 8)
    assert part.cancelled and len(part.noise_losses) == 3 and part.noise is not None


def test_masked_embedding_fits_only_the_region(tiny_generator):
    g = tiny_generator
    target = _target(g)
    mask = np.zeros((16, 16), np.uint8)
    mask[:, :8] = 1
    scribbled = target.clone()
    scribbled[..., :, 8:] = 1.0  # garbage outside the mask
    a = embed(g, target, steps=10, lr=0.05, n_mean=64, mask=torch.from_numpy(mask))
    b = embed(g, scribbled, steps=10, lr=0.05, n_mean=64, mask=torch.from_numpy(mask))
    assert torch.equal(a.wplus, b.wplus) and a.losses == b.losses
    c = embed(g, scribbled, steps=10, lr=0.05, n_mean=64)
    assert not torch.equal(c.wplus, b.wplus)
    with pytest.raises(ValueError, match="selects no pixel"):
        embed(g, target, steps=1, n_mean=8, mask=torch.zeros(16, 16))
