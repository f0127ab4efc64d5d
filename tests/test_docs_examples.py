"""Every code example in the README and in ``docs/`` runs, as written.

Each fenced block of ``README.md`` and ``docs/**/*.md`` is one of:

- ``python``: executed in a fresh namespace, in a temporary working directory;
- ``pycon``: run as a doctest (its printed output is checked);
- ``bash``: run by ``bash -euo pipefail`` in a temporary working directory, with this
  interpreter's ``python`` and scripts first on ``PATH`` and the repository on
  ``PYTHONPATH``;
- ``latex`` or ``text``: shown, never run.

HTML comments on the lines just above a fence steer it (they are invisible on GitHub and on
the site):

- ``<!-- not run: REASON -->``: the block is shown but not run. REASON is one of
  :data:`REASONS` (several joined by ", "): it installs packages, it needs a GPU, or it is a
  long run (the main job, the test suite, a benchmark, a CIFAR-10 run, a server); or
  ``in tests/FILE.py``: the same pattern runs, whole and judged, in that test file (the
  framework integrations, whose snippets are fragments of a user's Trainer setup). Nothing
  else may be skipped.
- ``<!-- continued -->``: the block runs in the namespace of the block before it on the same
  page (a session that goes on), which must itself run.
- ``<!-- setup: NAME -->``: the block is a fragment of the user's own program (the README's
  training loop uses the user's ``model`` and ``loader``); :data:`SETUPS` [NAME] provides
  those names first, with small stock PyTorch objects, and checks the outcome after.

A Python example that imports a module by an old name (kept importable, with a
``DeprecationWarning``, since the package's restructuring) fails: the pages show the present
names. Also checked here, without MkDocs: every public name of ``equivalence.__all__`` has its
``::: equivalence.<name>`` entry in the API reference, and every section of the README
that a page includes (``--8<-- "README.md:NAME"``) exists.
"""

from __future__ import annotations

import doctest
import io
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: the only reasons a block may be shown without being run
REASONS = frozenset({"install", "needs GPU", "long run"})


def _allowed(reason: str) -> bool:
    """A reason of :data:`REASONS`, or ``in tests/FILE.py`` naming a test file that exists."""
    if reason in REASONS:
        return True
    path = reason.removeprefix("in ")
    return reason.startswith("in tests/") and path.endswith(".py") and (ROOT / path).is_file()


RUN_LANGS = frozenset({"python", "pycon", "bash"})
SHOWN_LANGS = frozenset({"latex", "text"})

_MODEL = """
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(
    nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(),
    nn.Linear(16, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(),
    nn.Linear(16, 3),
).double()
g = torch.Generator().manual_seed(0)
"""

#: NAME -> (code run before the block, code run after it: the outcome the block must reach)
SETUPS: dict[str, tuple[str, str]] = {
    # the README's training loop: your model, loader, loss and an example batch (CPU, float64;
    # its GradScaler("cuda") and autocast("cuda") switch themselves off without CUDA)
    "training-loop": (
        _MODEL
        + """
loader = [(torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g))
          for _ in range(2)]
example_batch = loader[0][0]
loss_fn = nn.functional.cross_entropy
""",
        """
assert run.optimizer is opt and run.current_scale() > 1.01  # converted, and it grew
assert sched.last_epoch == 160 and os.path.exists("ckpt.pt")
""",
    ),
    # the AdamW snippet of docs/optimizers.md: your model and its audit report; one step after
    "adamw": (
        _MODEL
        + """
from torch.optim.lr_scheduler import CosineAnnealingLR
import equivalence

equivalence.make_scale_invariant(model)
x, y = torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
report = equivalence.audit(model, x)
""",
        """
assert run.optimizer is opt and run.current_scale() == 1.0
nn.functional.cross_entropy(model(x), y).backward()
opt.step()
sched.step()
assert run.current_scale() > 1.0  # the decay acted on the scale, not on the weights
""",
    ),
    # the README's lockstep example: your model, your batches, a probe batch
    "lockstep": (
        _MODEL
        + """
import torch.nn.functional as F
from torch.optim.lr_scheduler import MultiStepLR
import equivalence

equivalence.make_scale_invariant(model)
batches = [(torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g))
           for _ in range(12)]
x = batches[0][0]
""",
        """
assert verdict.ok, verdict.reasons
""",
    ),
}

_FENCE = re.compile(r"^(`{3,})([\w+-]*)\s*$")
_COMMENT = re.compile(r"^<!--\s*(.*?)\s*-->$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: tuple[str, ...] = ()
    setup: str | None = None
    continued: bool = False
    unknown: list[str] = field(default_factory=list)  # comments above it that are no marker

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one page, with the markers on the lines just above each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.groups()
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence),
            None,
        )
        assert end is not None, f"{page.relative_to(ROOT)}:{i + 1}: the fence is not closed"
        block = Block(page, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n")
        k = i - 1
        while k >= 0 and _COMMENT.match(lines[k]):
            _marker(block, _COMMENT.match(lines[k]).group(1))  # type: ignore[union-attr]
            k -= 1
        found.append(block)
        i = end + 1
    return found


def _marker(block: Block, text: str) -> None:
    if text.startswith("not run:"):
        block.skip = tuple(r.strip() for r in text[len("not run:") :].split(","))
    elif text.startswith("setup:"):
        block.setup = text[len("setup:") :].strip()
    elif text == "continued":
        block.continued = True
    elif not text.startswith("--8<--"):  # a snippet section marker (the site's includes)
        block.unknown.append(text)


ALL = [b for page in PAGES for b in blocks(page)]


def chains() -> Iterator[list[Block]]:
    """Python and pycon blocks that run, grouped into sessions (a block and its continuations)."""
    for page in PAGES:
        chain: list[Block] = []
        for b in blocks(page):
            if b.lang not in ("python", "pycon") or b.skip:
                continue
            if b.continued:
                chain.append(b)
                continue
            if chain:
                yield chain
            chain = [b]
        if chain:
            yield chain


CHAINS = list(chains())
SHELL = [b for b in ALL if b.lang == "bash" and not b.skip]


# -- the rules every block follows ------------------------------------------------------------------


def test_every_block_is_run_or_says_why_not() -> None:
    problems = []
    for b in ALL:
        if not b.lang:
            problems.append(f"{b.where}: a fence without a language")
        elif b.lang not in RUN_LANGS | SHOWN_LANGS:
            problems.append(f"{b.where}: language {b.lang!r} is neither run nor shown-only")
        if b.unknown:
            problems.append(f"{b.where}: unknown marker(s) {b.unknown}")
        if b.skip and (not all(_allowed(r) for r in b.skip) or "" in b.skip):
            problems.append(f"{b.where}: not run for {b.skip}, allowed reasons {sorted(REASONS)}")
        if b.skip and (b.setup or b.continued):
            problems.append(f"{b.where}: a block not run cannot have a setup or continue")
        if b.setup is not None and b.setup not in SETUPS:
            problems.append(f"{b.where}: unknown setup {b.setup!r}")
        if b.lang in SHOWN_LANGS and (b.skip or b.setup or b.continued):
            problems.append(f"{b.where}: a {b.lang} block is never run; it takes no marker")
    assert problems == []


def test_a_continued_block_follows_one_that_runs() -> None:
    for page in PAGES:
        previous: Block | None = None
        for b in blocks(page):
            if b.lang not in ("python", "pycon"):
                continue
            if b.continued:
                assert previous is not None and not previous.skip, (
                    f"{b.where}: continues no block that runs"
                )
                assert b.setup is None, f"{b.where}: a continued block takes its namespace"
            previous = b


def test_the_examples_are_found() -> None:
    """The collection is not empty by accident: the README's quick start is shown, not run;
    its training loop and the docs' examples run."""
    readme = [b for b in ALL if b.page.name == "README.md"]
    quick = next(b for b in readme if "exp-lr-verify" in b.code and b.lang == "bash")
    assert quick.skip == ("install",)
    assert any(b.setup == "training-loop" for b in readme)
    assert len(CHAINS) >= 10 and len(SHELL) >= 3


def test_every_public_name_is_in_the_api_reference() -> None:
    import equivalence

    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("api*.md"))
    documented = set(re.findall(r"^::: equivalence\.(\w+)\s*$", text, re.MULTILINE))
    missing = sorted(set(equivalence.__all__) - documented)
    assert missing == [], (
        f"public names without '::: equivalence.<name>' in docs/api*.md: {missing}"
    )
    unknown = sorted(documented - set(equivalence.__all__))
    assert unknown == [], f"docs/api*.md documents names that are not public: {unknown}"


def test_included_readme_sections_exist() -> None:
    """``--8<-- "README.md:NAME"`` on a page needs both section markers in the README (the
    site's build would fail without them; this says so without MkDocs)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        for file, name in re.findall(r'^--8<-- "([^":]+):([^"]+)"$', page.read_text(), re.M):
            text = (ROOT / file).read_text(encoding="utf-8") if file != "README.md" else readme
            for edge in ("start", "end"):
                assert f"<!-- --8<-- [{edge}:{name}] -->" in text, (
                    f"{page.relative_to(ROOT)} includes {file}:{name}, which has no {edge}"
                )


def test_readme_links_resolve() -> None:
    """The README is read on GitHub, outside the site's link check: its relative links
    (the docs pages, the tests) name files that exist."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)}
    missing = sorted(t for t in targets if "://" not in t and not (ROOT / t).exists())
    assert missing == []


# -- running them -------------------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A temporary working directory, one thread, float64 off by default, Agg plots."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)  # tiny networks: threads cost more than they give
    yield tmp_path
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)


def _run_doctest(block: Block, namespace: dict) -> None:
    test = doctest.DocTestParser().get_doctest(
        block.code, namespace, block.where, str(block.page), block.line
    )
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=out.write, clear_globs=False)
    assert result.failed == 0, f"{block.where}: doctest failed\n{out.getvalue()}"
    namespace.update(test.globs)


@pytest.mark.parametrize("chain", CHAINS, ids=[c[0].where for c in CHAINS])
def test_python_example_runs(chain: list[Block], sandbox) -> None:
    namespace: dict = {"__name__": "__main__"}
    first = chain[0]
    before, after = SETUPS[first.setup] if first.setup else ("", "")
    exec(compile(before, f"<setup {first.setup}>", "exec"), namespace)  # noqa: S102
    with warnings.catch_warnings():
        # the README's loop asks for CUDA's GradScaler and autocast, which switch themselves
        # off (with a warning) where there is no GPU; the loop is otherwise the same
        warnings.filterwarnings("ignore", message=".*CUDA is not available.*")
        # the pages use the modules' present names, not the old ones kept for compatibility
        warnings.filterwarnings("error", message=".* has moved to ", category=DeprecationWarning)
        for b in chain:
            if b.lang == "pycon":
                _run_doctest(b, namespace)
            else:
                exec(compile(b.code, b.where, "exec"), namespace)  # noqa: S102 - the docs' code
    exec(compile("import os\n" + after, f"<check {first.setup}>", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("block", SHELL, ids=[b.where for b in SHELL])
def test_shell_example_runs(block: Block, sandbox) -> None:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{block.where}: exit {proc.returncode}\n{block.code}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )
    assert proc.stdout.strip(), f"{block.where}: printed nothing"
