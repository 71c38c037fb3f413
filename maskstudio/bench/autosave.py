"""Autosave cost on the GUI thread vs in the background job: ``python -m maskstudio.bench.autosave``.

A 512² document with 30 undo steps and a 512² exemplar; each round adds a stroke, then times
:meth:`EditSession.autosave_snapshot` (what the GUI thread does) and
:meth:`EditSession.autosave_write` (the background job: PNG encoding + zip + atomic replace).
Prints medians (ms) and writes nothing outside a temporary folder.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from maskstudio.engine.types import Exemplar
    from maskstudio.session import AutosaveStore, EditSession

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args(argv)
    n = args.size
    with tempfile.TemporaryDirectory() as d:
        store = AutosaveStore(d)
        s = EditSession(store)
        rng = np.random.default_rng(0)
        lab = np.zeros((n, n), np.uint8)
        lab[n // 5:4 * n // 5, n // 4:3 * n // 4] = 1
        doc = s.new_document(lab)
        s.set_exemplar(Exemplar(rng.integers(0, 256, (n, n, 3), dtype=np.uint8), lab), mark_dirty=False)
        for i in range(30):
            doc.stroke([(n * 0.1 + i * n / 50, n * 0.12), (n * 0.6, n * 0.8 - i * n / 100)], n / 25, 13)
        snap_ms, write_ms = [], []
        for i in range(args.rounds):
            doc.stroke([(n * 0.12 + i, n * 0.14), (n * 0.4, n * 0.6)], n / 50, 2 + i % 10)
            t0 = time.perf_counter()
            snap = s.autosave_snapshot()
            t1 = time.perf_counter()
            s.autosave_write(*snap)
            t2 = time.perf_counter()
            snap_ms.append((t1 - t0) * 1e3)
            write_ms.append((t2 - t1) * 1e3)
        store.end_session()
    print(f"autosave {n}² (10 undo steps kept): snapshot on the GUI thread median {statistics.median(snap_ms):.1f} ms; "
          f"write in the background median {statistics.median(write_ms):.1f} ms ({args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
