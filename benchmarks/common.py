"""Helpers shared by the benchmark scripts: subprocess isolation, peak memory, tables."""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def run_isolated(script: str, args: list[str]) -> dict:
    """Run `script --system ...` in a fresh interpreter; it prints one JSON line last."""
    out = subprocess.run([sys.executable, script, *args], stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def save_results(path: str, args: dict, machine_text: str, results: dict) -> None:
    """After each system, so a failure later in the run keeps what was measured."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"args": args, "machine": machine_text, "results": results}, indent=2))


def run_systems(script: str, args) -> dict:
    """Run each of args.systems in its own process with the same settings; save after each."""
    forwarded = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("system", "systems", "out")]
    results = {}
    for system in args.systems.split(","):
        print(f"running {system} ...", file=sys.stderr, flush=True)
        results[system] = run_isolated(script, forwarded + [f"--system={system}"])
        print(json.dumps(results[system]), file=sys.stderr, flush=True)
        save_results(args.out, vars(args), machine(), results)
    return results
