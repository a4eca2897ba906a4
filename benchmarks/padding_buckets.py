"""How far long batches are padded: memory and speed of SQuAD training for each rounding.

    python benchmarks/padding_buckets.py [--steps 150] [--systems step16,step8,step32,none] [--rounds 2]

A batch longer than batching.BUCKET_FROM tokens is padded up to a multiple of BUCKET_STEP, so that
oneDNN, which compiles and keeps a kernel and its buffers for every matrix shape it meets, meets
few shapes (session 18: SQuAD training's peak memory 8.2 GB -> 3.8 GB with steps of 16). Each
system here is one rounding:
- stepN: batches over 64 tokens padded to a multiple of N (step16 is textmaker's);
- none:  every batch padded to its own longest row (before session 18).
Each runs MiniLM question-answer training (the defaults: batch 16, windows of up to 384 tokens) on
the 33 training articles of the shared SQuAD v1.1 file for --steps optimizer steps, in its own
process: peak resident memory is the process's. `--rounds 2` alternates the order, for a drifting
CPU's speed. Reports seconds, peak RSS, and how many batch widths the steps met.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, machine, patched, peak_rss_mb, run_systems  # noqa: E402


def run_system(a) -> dict:
    from textmaker import QADataset, QuestionAnswerer, batching, training

    train, _ = QADataset.from_squad(SHARED / "squad" / "squad-v1.1-dev-39articles.json").split(0.8, seed=0)
    widths: set[int] = set()
    pad = training.pad_batch

    def recording(rows, pad_id, width=None):
        widths.add(width)
        return pad(rows, pad_id, width)

    step = 10**6 if a.system == "none" else int(a.system.removeprefix("step"))
    frm = 10**6 if a.system == "none" else batching.BUCKET_FROM
    with patched(batching, "BUCKET_STEP", step), patched(batching, "BUCKET_FROM", frm), \
            patched(training, "pad_batch", recording):
        t0 = time.perf_counter()
        QuestionAnswerer.create(train, max_steps=a.steps, progress=False)
        seconds = time.perf_counter() - t0
    return {"system": a.system, "steps": a.steps, "seconds": seconds, "widths": len(widths),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--systems", default="step16,step8,step32,none")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/padding_buckets.json")
    p.add_argument("--system", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.system:
        print(json.dumps(run_system(a)))
        return
    print(machine())
    results = run_systems(__file__, a, a.rounds)
    print(f"| system | widths met | seconds for {a.steps} steps | peak RSS |")
    print("|---|---|---|---|")
    for system, runs in results.items():
        runs = runs if isinstance(runs, list) else [runs]
        seconds = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        memory = ", ".join(f"{r['peak_rss_mb']:,.0f} MB" for r in runs)
        print(f"| {system} | {runs[0]['widths']} | {seconds} | {memory} |")


if __name__ == "__main__":
    main()
