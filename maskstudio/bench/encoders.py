"""Median CPU/GPU latency of the photo encoders (pSp GradualStyleEncoder, AgileGAN VAE encoder).

    python -m maskstudio.bench.encoders [--threads 2] [--repeats 5] [--batch 1] [--device cpu]
                                        [--json out.json]

Full-size official architecture (IR-SE-50, 256 px input, 18 styles; random weights: the
latency does not depend on the values). Prints one line per measurement and, with --json,
writes {name: {"median_ms", "min_ms", "repeats", ...}}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from maskstudio.models.agilegan_encoder import AgileEncoderConfig, AgileEncoderModel
from maskstudio.models.psp import PSPConfig, PSPEncoderModel


def _time(fn, repeats: int, device: torch.device) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = (torch.rand(args.batch, 3, 256, 256) * 2 - 1).to(device)
    results: dict[str, dict[str, float | str]] = {}

    def record(name: str, times: list[float]) -> None:
        results[name] = {"median_ms": statistics.median(times), "min_ms": min(times),
                         "repeats": len(times), "batch": args.batch, "threads": args.threads,
                         "device": str(device)}
        print(f"{name:28s} median {statistics.median(times):9.1f} ms  min {min(times):9.1f} ms")

    psp = PSPEncoderModel(PSPConfig()).to(device).eval()
    with torch.no_grad():
        record("psp_encode_256", _time(lambda m=psp: m.encode(x), args.repeats, device))
        codes = psp.encode(x)
        record("psp_zplus_to_wplus", _time(lambda m=psp: m.to_wplus(codes), args.repeats, device))
    del psp
    agile = AgileEncoderModel(AgileEncoderConfig()).to(device).eval()
    with torch.no_grad():
        record("agilegan_encode_mu_256", _time(lambda m=agile: m.encode_mu(x), args.repeats, device))
    del agile
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
