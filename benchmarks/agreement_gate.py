"""How often the export's agreement gate refuses an export, by sample size and true change rate.

Two gates at the default --min-agreement 0.97:
- share: refuse when fewer than 97% of the sample's labels match (the gate until session 21);
- test: refuse when more labels changed than a 3% change rate explains (one-sided binomial test,
  p < 0.05), the exporter's gate now.
Labels change independently at the true rate, so the count of changes is binomial: the odds
below are exact, not simulated.

    python benchmarks/agreement_gate.py
"""

from __future__ import annotations

import argparse
import math

from textmaker.export import Tolerance
from textmaker.metrics import binomial_tail


def refused_from(n: int, min_agreement: float, gate: str) -> int:
    """The fewest changed labels of n that the gate refuses."""
    if gate == "share":
        return next(k for k in range(n + 1) if (n - k) / n < min_agreement)
    gate = Tolerance(min_agreement=min_agreement)
    return next((k for k in range(n + 1) if gate.refuses_changes(n, k)), n + 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, nargs="+", default=[48, 120, 300, 500, 872, 1000])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.02, 0.03, 0.06, 0.10])
    ap.add_argument("--min-agreement", type=float, default=0.97)
    args = ap.parse_args(argv)
    head = " | ".join(f"refused at {100 * r:g}%" for r in args.rates)
    print(f"| texts | gate | refused from (changes, agreement) | {head} |")
    print("|---" * (3 + len(args.rates)) + "|")
    for n in args.samples:
        for gate in ("share", "test"):
            k = refused_from(n, args.min_agreement, gate)
            odds = " | ".join(f"{binomial_tail(n, k, r):.3f}" for r in args.rates)
            agreement = f"{100 * (n - k) / n:.1f}%" if k <= n else "never"
            print(f"| {n} | {gate} | {k}, {agreement} | {odds} |")
    assert math.isclose(binomial_tail(120, 4, 0.02), 0.2196, abs_tol=1e-3)  # the session-20 figure


if __name__ == "__main__":
    main()
