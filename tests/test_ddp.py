"""Data-parallel training: 2 CPU processes under torchrun (gloo) on tiny data stay in sync."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maskstudio.training.distributed import DistInfo, env_world, shard, wrap
from tests.training_fixtures import TINY_PARSER, make_dataset

ROOT = Path(__file__).resolve().parents[1]

# Each rank trains both models with the library calls (the second joins the group the first made)
# and writes what it ended with; a real script, run by torchrun as `maskstudio train` would be.
WORKER = r'''
import json, os, sys
from pathlib import Path
from maskstudio.training.dmn_trainer import DMNTrainConfig, train_dmn
from maskstudio.training.parser_trainer import ParserTrainConfig, train_parser

data, out = Path(sys.argv[1]), Path(sys.argv[2])
rank = int(os.environ["RANK"])
quiet = dict(show_progress=False, log=lambda *a: None)
dmn = train_dmn(data, out / "dmn", DMNTrainConfig(size=64, batch_size=2, steps=3, ngf=4, n_downsample=2,
                n_blocks=1, ndf=8, num_threads=1, save_every=2, use_pseudo=False, val_fraction=0.25,
                upsample="resize_conv"), **quiet)
parser = train_parser(data, out / "parser", ParserTrainConfig(size=64, batch_size=2, epochs=2, max_steps=3,
                      num_threads=1, save_every=2, val_fraction=0.25, model=json.loads(sys.argv[3])), **quiet)
(out / f"rank{rank}.json").write_text(json.dumps({"dmn": dmn, "parser": parser,
    "world": int(os.environ["WORLD_SIZE"])}))
'''


def test_shard_is_disjoint_and_covers_the_global_batch():
    batch = list(range(10))
    parts = [shard(batch, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == batch
    assert all(not set(a) & set(b) for i, a in enumerate(parts) for b in parts[i + 1:])


def test_single_process_is_not_wrapped(monkeypatch):
    import torch

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert env_world() == (0, 1, 0)
    m = torch.nn.Linear(2, 2)
    assert wrap(m, DistInfo()) is m


def test_bad_torchrun_environment_is_a_clear_error(monkeypatch):
    from maskstudio.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ConfigError, match="RANK 5"):
        env_world()


def test_two_gloo_processes_train_in_sync(tmp_path):
    data = make_dataset(tmp_path / "data", n=12, size=64)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script), str(data), str(out), json.dumps(TINY_PARSER)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    for model in ("dmn", "parser"):
        assert r0[model]["world_size"] == 2 and r0[model]["steps"] == r1[model]["steps"] == 3
        # bit-identical replicas after 3 synchronised updates
        assert r0[model]["weights_sha256"] == r1[model]["weights_sha256"], model
    # ...that moved: not the untrained initial weights, and the ranks saw different samples
    assert r0["dmn"]["first"][0]["l1"] != r1["dmn"]["first"][0]["l1"]
    # only rank 0 wrote the run folders, and what it wrote is the synchronised model
    from maskstudio.models.checkpoints import load_checkpoint
    from maskstudio.training.common import load_state, weights_sha256

    g = load_checkpoint(out / "dmn" / "dmn.safetensors").module
    assert g.cfg.upsample == "resize_conv"
    state = load_state(out / "dmn" / "dmn_state.pt")
    assert int(state["step"]) == 3 and len((out / "dmn" / "history.jsonl").read_text().splitlines()) == 2
    p = load_checkpoint(out / "parser" / "face_parser.safetensors").module
    assert weights_sha256(p) == r0["parser"]["weights_sha256"]


def test_cli_parse_shards_its_images_across_ranks(tmp_path, monkeypatch, capsys):
    import numpy as np
    import torch
    from PIL import Image

    from maskstudio.cli.main import main
    from maskstudio.models.checkpoints import save_checkpoint
    from maskstudio.models.face_parser import FaceParser, FaceParserConfig

    torch.manual_seed(0)
    m = FaceParser(FaceParserConfig(**TINY_PARSER, input_size=64)).eval()
    save_checkpoint(tmp_path / "parser", m, "face_parser", m.cfg)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    written = []
    for rank in range(2):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        out = tmp_path / f"out{rank}"
        assert main(["parse", *paths, "-o", str(out), "--parser", str(tmp_path / "parser.safetensors"),
                     "--device", "cpu"]) == 0
        written.append(sorted(p.name for p in out.iterdir()))
    assert written == [["img0.png", "img2.png", "img4.png"], ["img1.png", "img3.png"]]
