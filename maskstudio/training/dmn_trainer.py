"""Train a starter MaskGAN Dense Mapping Network (MaskGAN's first stage).

The style reference is the target face itself: ``G(onehot(m), onehot(m), x) ≈ x``. Losses on
the generator:

* adversarial, least-squares, from a multi-scale patch discriminator conditioned on the mask
  (``D(cat(onehot, image))``);
* discriminator feature matching (L1 on every intermediate activation, ×``fm_weight``);
* L1 reconstruction to the photo (×``l1_weight``);
* optional perceptual loss: L1 between *our own face parser's* encoder features of render and
  photo (×``perc_weight``) — there is no ImageNet network here;
* optional parse consistency: cross-entropy of the frozen parser on the render against the input
  mask (×``seg_weight``), which keeps small parts (eyes, brows, lips) where the mask puts them.

Data: the train split of the labelled pairs (the val split stays held out for
``maskstudio eval dmn``) plus, when a parser is given, the unlabelled faces whose parser
pseudo-labels pass a confidence filter (:func:`pseudo_label`). Training state (G, D, both
optimizers, step) lives in ``<out>/dmn_state.pt``; ``<out>/dmn.safetensors|.json`` is the
generator, written every ``save_every`` steps so a run can ship intermediate checkpoints.
Deterministic: batch ``b`` of epoch ``e`` is drawn from ``default_rng([seed, e])`` and augmented
with ``default_rng([seed, e, b])``.

``upsample`` picks the decoder layout (``"transpose"`` = official, or the checkerboard-free v2
``"resize_conv"`` / ``"subpixel"``); ``init`` warm-starts a fresh run's generator from a DMN
checkpoint, copying every tensor whose name and shape match (:func:`warm_start`), so a v2 run
keeps the shipped encoders and residual blocks and only learns its new up-sampling convs anew.

Data-parallel under ``torchrun`` (:mod:`maskstudio.training.distributed`): G and D are wrapped in
``DistributedDataParallel``; ``batch_size`` is per process, each step's global batch of
``batch_size × world_size`` is sharded across the ranks (each rank augments its share with
``default_rng([seed, e, b, rank])``); only rank 0 writes files. One process is unchanged.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork, one_hot, warm_start
from maskstudio.training.common import load_parser
from maskstudio.training import common
from maskstudio.training import distributed as ddp
from maskstudio.training.data import augment, batches, find_pairs, load_pairs, load_split, split_stems, write_split
from maskstudio.training.pseudo import pseudo_labelled_faces
from maskstudio.training.discriminator import (MultiScaleDiscriminator, PatchDiscriminatorConfig,
                                               feature_matching_loss, lsgan_loss)


@dataclass
class DMNTrainConfig:
    size: int = 128
    batch_size: int = 4
    steps: int = 3000
    ngf: int = 16
    n_downsample: int = 4
    n_blocks: int = 4
    ndf: int = 32
    d_scales: int = 2
    lr: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 10.0
    fm_weight: float = 10.0
    perc_weight: float = 5.0
    seg_weight: float = 1.0
    use_pseudo: bool = True
    pseudo_min_confidence: float = 0.90   # mean per-pixel max-probability over the face
    pseudo_max_uncertain: float = 0.08    # max fraction of pixels with max-probability < 0.6
    jitter: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    num_threads: int | None = None
    save_every: int = 200
    #: from this step on both learning rates fall linearly to 0 at ``steps`` (pix2pixHD's
    #: schedule); None keeps them constant
    decay_from: int | None = None
    #: also keep ``snapshots/dmn_<step>.safetensors`` every this many steps (pick the best later)
    keep_every: int | None = None
    #: decoder up-sampling: "transpose" (official layout), "resize_conv" or "subpixel"
    upsample: str = "transpose"
    #: warm start a fresh run's generator from this DMN checkpoint (name+shape-matching tensors)
    init: str | None = None
    #: > 0: also keep an exponential moving average of the generator's weights (this decay per
    #: step; buffers copied), written as ``dmn_ema.safetensors`` (and ``snapshots/dmn_ema_<step>``)
    #: beside the raw weights. A run resumed from a state without one starts it from the weights.
    ema_decay: float = 0.0
    #: train the decoder only (up-sampling stages and output conv): the style encoder, label
    #: encoder, encoder and residual blocks run without gradients and keep their (warm-started)
    #: weights — a fast way to re-learn a decoder whose layout changed (``--upsample``)
    freeze_trunk: bool = False
    #: the discriminator, adversarial and feature-matching losses start at this step (before it
    #: the generator learns from L1 + the parser's perceptual and segmentation losses only);
    #: None = from the start
    gan_from: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lr_at(self, step: int) -> float:
        """Learning rate for the update that takes the run from ``step`` to ``step + 1``."""
        if self.decay_from is None or step < self.decay_from:
            return self.lr
        span = max(1, self.steps - self.decay_from)
        return self.lr * max(0.0, (self.steps - step) / span)

    def model_config(self) -> DenseMappingConfig:
        return DenseMappingConfig(ngf=self.ngf, n_downsample=self.n_downsample, n_blocks=self.n_blocks,
                                  upsample=self.upsample)


def _resize_batch(images: np.ndarray, masks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    if images.shape[1] == size:
        return images, masks
    import cv2

    imgs = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])
    msks = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) for m in masks])
    return imgs, msks


def to_model_image(imgs: np.ndarray, device: str) -> torch.Tensor:
    """uint8 N×H×W×3 -> float [-1,1] N×3×H×W."""
    return torch.from_numpy(imgs).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_dmn(data_dir, out_dir, cfg: DMNTrainConfig, *, parser_path=None, resume: bool = False,
              cache_dir=None, show_progress: bool = True, log=print, stop_at: int | None = None) -> dict:
    """Train (or resume) the DMN; ``stop_at`` leaves after that step as if interrupted."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common.setup_threads(cfg.num_threads)
    common.seed_everything(cfg.seed)
    dist = ddp.setup(cfg.device)
    try:
        return _train(data_dir, out, cfg, dist, parser_path=parser_path, resume=resume, cache_dir=cache_dir,
                      show_progress=show_progress and dist.is_main, log=ddp.rank_log(log, dist),
                      stop_at=stop_at)
    finally:
        ddp.teardown(dist)



def _train(data_dir, out: Path, cfg: DMNTrainConfig, dist: "ddp.DistInfo", *, parser_path, resume: bool,
           cache_dir, show_progress: bool, log, stop_at: int | None) -> dict:
    dev = dist.device
    main = dist.is_main
    state_path = out / "dmn_state.pt"
    state = common.load_state(state_path) if resume and state_path.exists() else None
    if resume and state is None:
        log(f"no state at {state_path}; starting fresh")

    # ---- data: train split of the pairs (+ confident pseudo-labels) -------------------------
    split_path = out / "split.json"
    parser = load_parser(parser_path, dev) if parser_path is not None else None
    data_size = max(cfg.size, 256) if cache_dir is not None else cfg.size
    with ddp.main_first(dist):  # rank 0 writes split, caches and pseudo-labels; the others read them
        if split_path.exists() and (state is not None or resume or not main):
            split = load_split(split_path)
        else:
            split = split_stems(find_pairs(data_dir).stems, cfg.val_fraction, cfg.seed)
            write_split(split_path, split)
        train = load_pairs(data_dir, data_size, cache_dir, split["train"])
        if parser is not None and cfg.use_pseudo:
            pimgs, plabs = pseudo_labelled_faces(data_dir, parser, data_size, out, cfg.pseudo_min_confidence,
                                                 cfg.pseudo_max_uncertain, cache_dir, show_progress, log)
    images, masks = train.images, train.masks
    n_pseudo = 0
    if parser is not None and cfg.use_pseudo:
        if len(plabs):
            images = np.concatenate([images, pimgs])
            masks = np.concatenate([masks, plabs])
        n_pseudo = int(len(plabs))

    # ---- models ---------------------------------------------------------------------------
    mcfg = cfg.model_config()
    G = DenseMappingNetwork(mcfg).to(dev)
    D = MultiScaleDiscriminator(PatchDiscriminatorConfig(in_channels=mcfg.label_nc + 3, ndf=cfg.ndf,
                                                         num_scales=cfg.d_scales)).to(dev)
    if cfg.freeze_trunk and dist.enabled:
        from maskstudio.errors import ConfigError

        raise ConfigError("--freeze-trunk runs in one process (DDP needs every parameter to get a gradient)")
    if cfg.freeze_trunk:
        G.requires_grad_(False)
        for p in G.decoder_parameters():
            p.requires_grad_(True)
    trained = [p for p in G.parameters() if p.requires_grad]
    opt_g = torch.optim.Adam(trained, lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    step = 0
    warm = None
    if state is None and cfg.init:
        warm = warm_start_generator(G, cfg.init)
        log(f"warm start from {cfg.init}: {warm['tensors_copied']}/{warm['tensors_total']} tensors, "
            f"{warm['params_copied']:,}/{warm['params_total']:,} parameters copied; fresh: "
            f"{', '.join(warm['not_copied']) or 'none'}")
    if state is not None:
        was = (state.get("config") or {}).get("upsample", "transpose")
        if was != mcfg.upsample:
            from maskstudio.errors import ConfigError

            raise ConfigError(f"{state_path}: the run was trained with --upsample {was}, "
                              f"not {mcfg.upsample}; resume with --upsample {was}")
        was_frozen = bool((state.get("config") or {}).get("freeze_trunk", False))
        if was_frozen != cfg.freeze_trunk:
            from maskstudio.errors import ConfigError

            raise ConfigError(f"{state_path}: the run was trained {'with' if was_frozen else 'without'} "
                              f"--freeze-trunk (its optimizer state covers other parameters); start a new "
                              f"run with --init {out / 'dmn.safetensors'} instead")
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
    G_ema = None
    if cfg.ema_decay:  # 0 = off
        if not 0.0 < cfg.ema_decay < 1.0:
            from maskstudio.errors import ConfigError

            raise ConfigError(f"EMA decay must be in (0, 1), not {cfg.ema_decay}")
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        if state is not None and state.get("G_ema") is not None:
            G_ema.load_state_dict(state["G_ema"])

    n = len(images)
    bs = min(cfg.batch_size * dist.world_size, n)  # the global batch; each rank takes its shard
    steps_per_epoch = max(1, n // bs)
    Gp, Dp = ddp.wrap(G, dist), ddp.wrap(D, dist)
    if dist.enabled:
        log(f"data-parallel: {dist.world_size} processes ({dist.backend}), {bs // dist.world_size} "
            f"samples each per step")
    log(f"DMN ngf={mcfg.ngf}: G {sum(p.numel() for p in G.parameters()):,} / D "
        f"{sum(p.numel() for p in D.parameters()):,} parameters; {len(train.stems)} pairs + {n_pseudo} "
        f"pseudo-labelled faces at {cfg.size}²; steps {step}->{cfg.steps}; device {dev}, "
        f"threads {torch.get_num_threads()}"
        + (f"; decoder only ({sum(p.numel() for p in trained):,} parameters trained)" if cfg.freeze_trunk else "")
        + (f"; GAN losses from step {cfg.gan_from}" if cfg.gan_from else "")
        + (f"; lr decays linearly from step {cfg.decay_from} to 0 at {cfg.steps}" if cfg.decay_from is not None else ""))

    def save_generator(path: Path, ema_path: Path | None = None) -> None:
        meta = {"train": {"data": str(data_dir), "split": "split.json", "steps": step, "size": cfg.size,
                          "pseudo_labels": n_pseudo, "recipe": cfg.to_dict()}}
        common.save_model(path, G, "maskgan_dmn", mcfg.to_dict(), meta=meta)
        if G_ema is not None and ema_path is not None:
            meta["train"]["ema_decay"] = cfg.ema_decay
            common.save_model(ema_path, G_ema, "maskgan_dmn", mcfg.to_dict(), meta=meta)

    def save() -> None:
        if not main:
            return
        common.save_state(state_path, {"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                                       "opt_d": opt_d.state_dict(), "step": step, "config": cfg.to_dict(),
                                       **({"G_ema": G_ema.state_dict()} if G_ema is not None else {})})
        try:
            save_generator(out / "dmn", out / "dmn_ema")
        except ImportError as e:
            log(f"model file not written ({e}); weights are in {state_path}")

    bar = common.progress(cfg.steps, step, "dmn", show_progress)
    t0 = time.time()
    hist: dict[str, float] = {}
    first: list[dict[str, float]] = []
    last: list[dict[str, float]] = []
    G.train()
    D.train()
    while step < cfg.steps:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        for b, idx in enumerate(batches(n, bs, np.random.default_rng([cfg.seed, epoch]))):
            if b < in_epoch:
                continue
            if step >= cfg.steps or (stop_at is not None and step >= stop_at):
                break
            if dist.enabled:
                idx = ddp.shard(idx, dist.rank, dist.world_size)
                rng = np.random.default_rng([cfg.seed, epoch, b, dist.rank])
            else:
                rng = np.random.default_rng([cfg.seed, epoch, b])
            lr = cfg.lr_at(step)
            common.set_lr(opt_g, lr)
            common.set_lr(opt_d, lr)
            pairs = [augment(images[i], masks[i], rng, True, cfg.jitter, 0.0) for i in idx]
            full_imgs, full_msks = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
            imgs, msks = _resize_batch(full_imgs, full_msks, cfg.size)
            real = to_model_image(imgs, dev)
            lab = torch.from_numpy(msks.astype(np.int64)).to(dev)
            oh = one_hot(lab, mcfg.label_nc)

            if cfg.freeze_trunk:
                with torch.no_grad():
                    feats = G.trunk(oh, G.encode_style(oh, real).flatten(1))
                fake = G.decode(feats)
            else:
                fake = Gp(oh, oh, real)
            use_gan = cfg.gan_from is None or step >= cfg.gan_from

            # -- discriminator
            if not use_gan:
                loss_d = torch.zeros((), device=dev)
            elif dist.enabled:  # one DDP forward per backward: fake and real in one batch (D is per-sample)
                both = Dp(torch.cat([torch.cat([oh, fake.detach()], 1), torch.cat([oh, real], 1)], 0))
                d_fake = [[t[:len(idx)] for t in s] for s in both]
                d_real = [[t[len(idx):] for t in s] for s in both]
            else:
                d_fake = D(torch.cat([oh, fake.detach()], 1))
                d_real = D(torch.cat([oh, real], 1))
            if use_gan:
                loss_d = 0.5 * (lsgan_loss(d_fake, False) + lsgan_loss(d_real, True))
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()

            # -- generator (through the plain D: its gradients here are never used, so not synced)
            loss_l1 = F.l1_loss(fake, real)
            loss_g = cfg.l1_weight * loss_l1
            terms = {"l1": loss_l1}
            if use_gan:
                g_fake = D(torch.cat([oh, fake], 1))
                loss_adv = lsgan_loss(g_fake, True)
                loss_fm = feature_matching_loss(g_fake, [[t.detach() for t in s] for s in d_real])
                loss_g = loss_g + loss_adv + cfg.fm_weight * loss_fm
                terms.update(adv=loss_adv, fm=loss_fm)
            if parser is not None and (cfg.perc_weight > 0 or cfg.seg_weight > 0):
                # the parser was trained at its input size: judge renders there
                ps = parser.cfg.input_size
                f01 = (fake + 1) * 0.5
                if f01.shape[-1] != ps:
                    f01 = F.interpolate(f01, size=(ps, ps), mode="bilinear", align_corners=False)
                logits, ff = parser(f01, return_features=True)
                if cfg.perc_weight > 0:
                    with torch.no_grad():
                        r01 = torch.from_numpy(_resize_batch(full_imgs, full_msks, ps)[0]).to(dev)
                        fr = parser.features(r01.permute(0, 3, 1, 2).float() / 255)
                    loss_p = sum(F.l1_loss(a, b_) / (b_.abs().mean() + 1e-3) for a, b_ in zip(ff, fr)) / len(ff)
                    loss_g = loss_g + cfg.perc_weight * loss_p
                    terms["perc"] = loss_p
                if cfg.seg_weight > 0:
                    if lab.shape[-1] == ps:
                        lab_p = lab
                    else:  # the target mask at the parser's size, from the full-size data
                        lab_p = torch.from_numpy(_resize_batch(full_imgs, full_msks, ps)[1].astype(np.int64)).to(dev)
                    loss_s = F.cross_entropy(logits, lab_p)
                    loss_g = loss_g + cfg.seg_weight * loss_s
                    terms["seg"] = loss_s
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if G_ema is not None:
                with torch.no_grad():
                    for pe, p in zip(G_ema.parameters(), G.parameters()):
                        pe.lerp_(p, 1.0 - cfg.ema_decay)
                    for be, b_ in zip(G_ema.buffers(), G.buffers()):
                        be.copy_(b_)
            step += 1

            vals = {k: float(v.detach()) for k, v in terms.items()}
            if use_gan:
                vals["d"] = float(loss_d.detach())
            for k, v in vals.items():
                hist[k] = v if k not in hist else 0.95 * hist[k] + 0.05 * v
            if len(first) < 5:
                first.append(vals)
            last = (last + [vals])[-5:]
            bar.set_postfix({k: f"{v:.3f}" for k, v in hist.items()})
            bar.update(1)
            if main and (step % cfg.save_every == 0 or step == cfg.steps):
                save()
                common.append_jsonl(out / "history.jsonl", {"step": step, "time_s": round(time.time() - t0, 1),
                                                            "lr": lr, **{k: round(v, 4) for k, v in hist.items()}})
            if main and cfg.keep_every and step % cfg.keep_every == 0:
                (out / "snapshots").mkdir(exist_ok=True)
                save_generator(out / "snapshots" / f"dmn_{step}", out / "snapshots" / f"dmn_ema_{step}")
        if stop_at is not None and step >= stop_at:
            break
    bar.close()
    save()
    summary = {"steps": step, "pseudo_labels": n_pseudo, "first": first, "last": last,
               "ema": hist, "time_s": time.time() - t0, "world_size": dist.world_size,
               "weights_sha256": common.weights_sha256(G, D)}
    if warm is not None:
        summary["warm_start"] = {k: v for k, v in warm.items() if k != "unused"}
    return summary


def warm_start_generator(G: DenseMappingNetwork, path) -> dict:
    """Copy the name+shape-matching tensors of the DMN checkpoint ``path`` into ``G`` (counts)."""
    from maskstudio.models.checkpoints import load_checkpoint

    src = load_checkpoint(path, device="cpu", dtype=torch.float32)
    if src.arch != "maskgan_dmn":
        from maskstudio.errors import CheckpointError, file_error

        raise file_error(CheckpointError, path, f"is a {src.arch!r} checkpoint, expected 'maskgan_dmn'")
    return warm_start(G, src.module.state_dict())
