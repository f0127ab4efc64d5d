#!/usr/bin/env python
"""Run PyTorch's own LR-scheduler tests against stock SGD and against the converted SGD.

PyTorch's ``test/optim/test_lrscheduler.py`` (not shipped in the wheel: give its path) is run
with pytest twice, through the plugin ``converted_sgd.py`` of this folder:

1. ``stock``: every ``SGD`` the tests build is stock ``torch.optim.SGD`` with weight decay
   added (1e-3 where the test gave 0): the reference;
2. ``converted``: the same SGD, converted in place by ``equivalence.convert_optimizer`` with
   the first param group declared invariant (``norm_layers=()``, ``check=False``).

It prints which tests pass stock, which of those fail converted (with each failure's message,
sorted into refusals at momentum >= 1, which the theorem requires; the converter's refusals of
a step on which an invariant parameter has no gradient; and the rest), and exits non-zero if
any test that passes stock fails converted for a reason other than momentum >= 1. Tests that
fail stock are left out of the comparison. ``--plain`` adds a run of the unmodified file.

The tests step the optimizer without any backward pass. ``--grads zero`` gives every parameter
without a gradient a zero ``.grad`` for the duration of each SGD step, in both runs alike, so
that the comparison reaches the rest of each test (see ``converted_sgd.py``).

Needs ``expecttest`` (``torch.testing._internal`` imports it): ``pip install expecttest``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The converter's refusal of a step on which an invariant parameter has no gradient.
NO_GRAD_REFUSAL = re.compile(r"ConversionError: .*found no gradient for the invariant parameter")
#: A refusal the theorem requires: at momentum >= 1 the scale sequence c_t changes sign.
MOMENTUM_REFUSAL = re.compile(r"^(ValueError|\S*ConversionError): .*\bmomentum\b")


def run_pytest(test_file: Path, mode: str, grads: str, extra: list[str], workdir: Path) -> dict:
    """Run pytest on ``test_file`` in ``mode``; the per-test outcomes and messages."""
    report = workdir / f"{mode}.json"
    env = dict(os.environ)
    env["LRSCHED_SGD_MODE"] = mode
    env["LRSCHED_GRADS"] = grads
    env["PYTORCH_PRINT_REPRO_ON_FAILURE"] = "0"  # messages without the repro boilerplate
    env["LRSCHED_REPORT"] = str(report)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(test_file),
        "-p",
        "converted_sgd",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(test_file.parent),
        "-c",
        os.devnull,  # no ini file of any enclosing project (addopts, -n auto, markers)
        "-q",  # no -W filters: several tests count the warnings they catch
        *extra,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=test_file.parent)
    summary = [ln for ln in proc.stdout.splitlines() if ln.strip()][-1:] or ["(no output)"]
    print(f"[{mode}] pytest {test_file.name} (exit {proc.returncode}): {summary[0]}")
    if not report.exists():
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"pytest ({mode}) wrote no report")
    data = json.loads(report.read_text(encoding="utf-8"))
    print(
        f"[{mode}]   SGD built by the tests: {data['sgd']['built']}, converted: {data['sgd']['converted']}"
    )
    return data["tests"]


def first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""


def short(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=(
            "Run PyTorch's test/optim/test_lrscheduler.py twice (stock SGD with weight decay "
            "added; the same SGD converted in place by equivalence.convert_optimizer) and "
            "compare: which tests pass stock, which of those fail converted, and why."
        ),
        epilog="Arguments after -- go to both pytest runs as they are, e.g. -- -k cycle_lr",
    )
    ap.add_argument("test_file", type=Path, help="path to PyTorch's test_lrscheduler.py")
    ap.add_argument(
        "--plain",
        action="store_true",
        help="also run the unmodified file (no weight decay added, no conversion)",
    )
    ap.add_argument(
        "--grads",
        choices=("none", "zero"),
        default="none",
        help=(
            "none (default): the tests as written, which step the optimizer without any "
            "backward pass; zero: during each SGD step, give every parameter without a "
            "gradient a zero .grad (taken away after the step), in both runs alike, so that "
            "the comparison gets past the converter's refusal of steps on invariant "
            "parameters without gradient"
        ),
    )
    ap.add_argument("--json", type=Path, help="write the comparison to this JSON file")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # what follows -- goes to pytest as it is, e.g. -- -k cycle
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = ap.parse_args(argv)
    test_file = args.test_file.resolve()
    if not test_file.is_file():
        ap.error(f"{test_file} is not a file")

    modes = (["plain"] if args.plain else []) + ["stock", "converted"]
    with tempfile.TemporaryDirectory(prefix="lrsched_") as tmp:
        results = {m: run_pytest(test_file, m, args.grads, extra, Path(tmp)) for m in modes}

    stock, conv = results["stock"], results["converted"]
    passed_stock = sorted(k for k, v in stock.items() if v["outcome"] == "passed")
    not_passed_stock = sorted(k for k, v in stock.items() if v["outcome"] != "passed")
    passed_conv = [k for k in passed_stock if conv.get(k, {}).get("outcome") == "passed"]
    failed = [k for k in passed_stock if k not in passed_conv]
    refusals = [
        k for k in failed if MOMENTUM_REFUSAL.match(first_line(conv.get(k, {}).get("message", "")))
    ]
    no_grad = [
        k for k in failed if NO_GRAD_REFUSAL.search(first_line(conv.get(k, {}).get("message", "")))
    ]
    others = [k for k in failed if k not in refusals and k not in no_grad]

    print()
    if args.plain:
        plain = results["plain"]
        n_plain = sum(v["outcome"] == "passed" for v in plain.values())
        differ = sorted(k for k in plain if plain[k]["outcome"] != stock.get(k, {}).get("outcome"))
        print(f"plain (unmodified file): {n_plain} of {len(plain)} passed")
        for k in differ:
            print(f"  plain {plain[k]['outcome']}, stock+decay {stock[k]['outcome']}: {short(k)}")
    print(f"stock SGD + weight decay: {len(passed_stock)} of {len(stock)} passed")
    for k in not_passed_stock:
        print(f"  excluded ({stock[k]['outcome']} stock): {short(k)}: {stock[k]['message']}")
    print(f"converted SGD: {len(passed_conv)} of the {len(passed_stock)} passed")
    print(f"passed stock, failed converted: {len(failed)}")
    print(f"  refused at momentum >= 1 (required by the theorem): {len(refusals)}")
    for k in refusals:
        print(f"    {short(k)}: {conv[k]['message'].splitlines()[0]}")
    print(f"  refused: an invariant parameter without gradient (stock skips it): {len(no_grad)}")
    for k in no_grad:
        print(f"    {short(k)}")
    if no_grad:
        print(f"    message: {first_line(conv[no_grad[0]]['message'])}")
    print(f"  other failures: {len(others)}")
    for k in others:
        entry = conv.get(k, {"outcome": "missing", "message": "not run"})
        print(f"    {short(k)} [{entry['outcome']}]: {entry['message']}")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "modes": results,
                    "passed_stock": passed_stock,
                    "passed_converted": passed_conv,
                    "grads": args.grads,
                    "momentum_refusals": refusals,
                    "no_gradient_refusals": no_grad,
                    "other_failures": others,
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    return 1 if others or no_grad else 0


if __name__ == "__main__":
    raise SystemExit(main())
