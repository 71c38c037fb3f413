"""Train :class:`~maskstudio.models.face_parser.FaceParser` on image/mask pairs.

Loss: class-weighted cross-entropy (weights ``sqrt(median_freq / freq)`` from the train masks,
clipped) + soft Dice over the classes present in the batch. Augmentation: l/r-swapping flip,
small scale/shift, brightness/contrast. AdamW, warm-up + cosine schedule. Self-training
(``teacher``): the unlabelled faces whose parse by the teacher passes the confidence filter of
:mod:`maskstudio.training.pseudo` join the train split (the val split stays real labels only).

Resumable and deterministic: the shuffling of epoch ``e`` is ``default_rng([seed, e])`` and the
augmentation of batch ``b`` is ``default_rng([seed, e, b])``, so resuming from a saved step
replays exactly the batches that were left. ``<out>/parser_state.pt`` holds model, optimizer and
counters (loads with ``weights_only=True``); ``<out>/face_parser.safetensors|.json`` the model;
``<out>/split.json`` the train/val stems; ``<out>/history.jsonl`` losses and val metrics.

Data-parallel under ``torchrun`` (:mod:`maskstudio.training.distributed`): the model is wrapped in
``DistributedDataParallel``, ``batch_size`` is per process, each step's global batch is sharded
across the ranks (augmented with ``default_rng([seed, e, b, rank])``), and only rank 0 evaluates
and writes files. A single process runs exactly as before.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maskstudio.labels import NUM_CLASSES
from maskstudio.models.face_parser import FaceParser, FaceParserConfig, count_parameters
from maskstudio.training import common
from maskstudio.training import distributed as ddp
from maskstudio.training.data import augment, batches, load_pairs, split_stems, write_split, load_split
from maskstudio.training.metrics import ConfusionMatrix, SegScores


@dataclass
class ParserTrainConfig:
    size: int = 256
    batch_size: int = 8
    epochs: int = 15
    max_steps: int | None = None     # stop early after this many optimizer steps (tests)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    dice_weight: float = 0.5
    jitter: float = 0.08
    color: float = 0.15
    rotate: float = 0.0              # max rotation in degrees (augmentation)
    channels_last: bool = True       # NHWC activations: ~1.7x faster steps on CPU
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    num_threads: int | None = None
    save_every: int = 200            # steps between state saves (also at every epoch end)
    init: str | None = None          # start from these weights (.safetensors), e.g. a lower-res run
    teacher: str | None = None       # self-training: add this parser's confident parses of the unlabelled faces
    pseudo_min_confidence: float = 0.90
    pseudo_max_uncertain: float = 0.08
    pseudo_require_parts: bool = True  # a kept parse must show skin, nose, both eyes and a lip
    model: dict = field(default_factory=dict)  # FaceParserConfig overrides

    def to_dict(self) -> dict:
        return asdict(self)


def class_weights(masks: np.ndarray, num_classes: int = NUM_CLASSES, lo: float = 0.25, hi: float = 8.0) -> np.ndarray:
    freq = np.bincount(masks.ravel(), minlength=num_classes).astype(np.float64)
    freq = freq / max(1.0, freq.sum())
    med = np.median(freq[freq > 0]) if (freq > 0).any() else 1.0
    w = np.sqrt(med / np.maximum(freq, 1e-6))
    return np.clip(w, lo, hi).astype(np.float32)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    probs = torch.softmax(logits, dim=1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    present = onehot.sum(dim=(0, 2, 3)) > 0
    dice = 1 - (2 * inter + eps) / (total + eps)
    return dice[present].mean() if present.any() else dice.mean() * 0


def to_tensors(imgs: np.ndarray, labs: np.ndarray, device: str,
               channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(imgs).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(labs.astype(np.int64)).to(device)
    return x, y


@torch.no_grad()
def evaluate(parser: FaceParser, images: np.ndarray, masks: np.ndarray, device: str = "cpu",
             batch_size: int = 8) -> SegScores:
    """Confusion-matrix scores of ``parser`` on uint8 arrays at their own size."""
    was = parser.training
    parser.eval()
    cm = ConfusionMatrix(parser.cfg.num_classes)
    for i in range(0, len(images), batch_size):
        x, y = to_tensors(images[i:i + batch_size], masks[i:i + batch_size], device, channels_last=True)
        pred = parser(x).argmax(1)
        cm.update(y.cpu().numpy(), pred.cpu().numpy())
    parser.train(was)
    return cm.scores()


def train_parser(data_dir, out_dir, cfg: ParserTrainConfig, *, resume: bool = False,
                 cache_dir=None, show_progress: bool = True, log=print, stop_at: int | None = None) -> dict:
    """Train (or resume) a face parser; returns the final summary dict.

    ``stop_at``: leave after this global step (state saved; the schedule is unchanged), as if
    the run had been interrupted there — ``resume=True`` continues it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common.setup_threads(cfg.num_threads)
    common.seed_everything(cfg.seed)
    dist = ddp.setup(cfg.device)
    try:
        return _train(data_dir, out, cfg, dist, resume=resume, cache_dir=cache_dir,
                      show_progress=show_progress and dist.is_main, log=ddp.rank_log(log, dist),
                      stop_at=stop_at)
    finally:
        ddp.teardown(dist)



def _train(data_dir, out: Path, cfg: ParserTrainConfig, dist: "ddp.DistInfo", *, resume: bool, cache_dir,
           show_progress: bool, log, stop_at: int | None) -> dict:
    import dataclasses

    main = dist.is_main
    cfg = dataclasses.replace(cfg, device=dist.device)
    state_path = out / "parser_state.pt"
    state = common.load_state(state_path) if resume and state_path.exists() else None
    if resume and state is None:
        log(f"no state at {state_path}; starting fresh")

    split_path = out / "split.json"
    with ddp.main_first(dist):  # rank 0 writes split, caches and pseudo-labels; the others read them
        if split_path.exists() and (state is not None or not main):
            split = load_split(split_path)
        else:
            from maskstudio.training.data import find_pairs

            split = split_stems(find_pairs(data_dir).stems, cfg.val_fraction, cfg.seed)
            write_split(split_path, split)
        train = load_pairs(data_dir, cfg.size, cache_dir, split["train"])
        val = load_pairs(data_dir, cfg.size, cache_dir, split["val"]) if split["val"] and main else None
        if cfg.teacher:
            from maskstudio.training.pseudo import pseudo_labelled_faces

            teacher = common.load_parser(cfg.teacher, cfg.device)
            pimgs, plabs = pseudo_labelled_faces(data_dir, teacher, cfg.size, out, cfg.pseudo_min_confidence,
                                                 cfg.pseudo_max_uncertain, cache_dir, show_progress, log,
                                                 require_parts=cfg.pseudo_require_parts)
            del teacher
    images, masks = train.images, train.masks
    n_pseudo = 0
    if cfg.teacher:
        if len(plabs):
            images, masks = np.concatenate([images, pimgs]), np.concatenate([masks, plabs])
        n_pseudo = int(len(plabs))

    mcfg = FaceParserConfig.from_dict({**FaceParserConfig().to_dict(), "input_size": cfg.size, **cfg.model})
    model = FaceParser(mcfg).to(cfg.device)
    if cfg.channels_last:
        # torch's stubs omit the documented Module.to(memory_format=...) form
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    if state is None and cfg.init:
        init = common.load_parser(cfg.init, cfg.device)
        model.load_state_dict(init.state_dict())  # copies values; keeps our memory format
        log(f"initialised from {cfg.init}")
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
    weights = torch.from_numpy(class_weights(train.masks, mcfg.num_classes)).to(cfg.device)

    n = len(images)
    bs = min(cfg.batch_size * dist.world_size, n)  # the global batch; each rank takes its shard
    net = ddp.wrap(model, dist)
    if dist.enabled:
        log(f"data-parallel: {dist.world_size} processes ({dist.backend}), {bs // dist.world_size} "
            f"samples each per step")
    steps_per_epoch = max(1, n // bs)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    log(f"face parser: {count_parameters(model):,} parameters, {len(train.stems)} train + {n_pseudo} pseudo-labelled / "
        f"{0 if val is None else len(val.stems)} val faces at {cfg.size}², {total} steps "
        f"({steps_per_epoch}/epoch), device {cfg.device}, threads {torch.get_num_threads()}")

    def save(epoch_done: bool) -> None:
        if not main:
            return
        common.save_state(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                       "step": step, "config": cfg.to_dict(), "model_config": mcfg.to_dict()})

    model.train()
    bar = common.progress(total, step, "parser", show_progress)
    t0 = time.time()
    ema = None
    losses = []
    while step < total:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        for b, idx in enumerate(batches(n, bs, np.random.default_rng([cfg.seed, epoch]))):
            if b < in_epoch:
                continue
            if step >= total or (stop_at is not None and step >= stop_at):
                break
            if dist.enabled:
                idx = ddp.shard(idx, dist.rank, dist.world_size)
                rng = np.random.default_rng([cfg.seed, epoch, b, dist.rank])
            else:
                rng = np.random.default_rng([cfg.seed, epoch, b])
            pairs = [augment(images[i], masks[i], rng, True, cfg.jitter, cfg.color, cfg.rotate)
                     for i in idx]
            x, y = to_tensors(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), cfg.device,
                              cfg.channels_last)
            common.set_lr(opt, common.lr_at(step, total, cfg.lr, cfg.warmup_steps))
            logits = net(x)
            ce = F.cross_entropy(logits, y, weight=weights)
            dl = dice_loss(logits, y)
            loss = ce + cfg.dice_weight * dl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            lv = float(loss.detach())
            losses.append(lv)
            ema = lv if ema is None else 0.95 * ema + 0.05 * lv
            bar.set_postfix(loss=f"{ema:.3f}", ce=f"{float(ce.detach()):.3f}", dice=f"{float(dl.detach()):.3f}", ep=epoch)
            bar.update(1)
            if step % cfg.save_every == 0:
                save(False)
        if stop_at is not None and step >= stop_at and step < total:
            save(False)
            bar.close()
            return {"steps": step, "first_losses": losses[:5], "last_losses": losses[-5:],
                    "time_s": time.time() - t0, "interrupted": True}
        # epoch end (or stop)
        rec = {"step": step, "epoch": epoch + 1, "loss_ema": ema, "time_s": round(time.time() - t0, 1)}
        if val is not None and (step % steps_per_epoch == 0 or step >= total):
            s = evaluate(model, val.images, val.masks, cfg.device)
            rec.update(val_mean_f1=round(s.mean_f1, 4), val_miou=round(s.miou, 4), val_pixel_acc=round(s.pixel_acc, 4))
            msg = f"epoch {epoch + 1}: loss {ema:.4f}  val mean F1 {s.mean_f1:.4f}  mIoU {s.miou:.4f}"
            bar.write(msg) if show_progress else log(msg)
        if main:
            common.append_jsonl(out / "history.jsonl", rec)
        save(True)
    bar.close()
    save(True)
    meta = {"train": {"data": str(data_dir), "split": "split.json", "steps": step, "pseudo_labels": n_pseudo,
                      "recipe": cfg.to_dict()}}
    try:
        if main:
            common.save_model(out / "face_parser", model, "face_parser", mcfg.to_dict(), meta=meta)
    except ImportError as e:  # checkpoint writer not available: the state file still has the weights
        log(f"model file not written ({e}); weights are in {state_path}")
    summary = {"steps": step, "pseudo_labels": n_pseudo, "first_losses": losses[:5], "last_losses": losses[-5:],
               "time_s": time.time() - t0, "world_size": dist.world_size,
               "weights_sha256": common.weights_sha256(model)}
    if val is not None:
        s = evaluate(model, val.images, val.masks, cfg.device)
        summary["val"] = s.to_dict()
    return summary
