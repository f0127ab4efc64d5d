"""Timing targets of the proofs and the toy, measured on one core.

- Deriving and checking all SymPy proofs (``proofs.run_all``): target < 30 s on one core.
- Checking all Coq files (``proofs.coq_check.check_all``: compile and audit): target < 120 s
  on one core.
- The toy's default run (three regimes, population gradients): target < 30 s on one core.

Run: ``taskset -c 0 python tests/benchmarks/bench_proofs_toy.py [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", default=None)
    parser.add_argument("--no-coq", action="store_true")
    args = parser.parse_args(argv)
    res: dict[str, float] = {}

    import proofs

    t0 = time.perf_counter()
    results = proofs.run_all()
    res["sympy_proofs_seconds"] = time.perf_counter() - t0
    assert all(r.ok for r in results), [r for r in results if not r.ok]

    if not args.no_coq:
        from proofs import coq_check

        if coq_check.coq_available():
            t0 = time.perf_counter()
            coq = coq_check.check_all()
            res["coq_seconds"] = time.perf_counter() - t0
            assert all(r.ok for r in coq)

    import toy

    t0 = time.perf_counter()
    toy.run_regimes(toy.ToyConfig())
    res["toy_default_seconds"] = time.perf_counter() - t0

    for k, v in res.items():
        print(f"{k:24s} {v:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
