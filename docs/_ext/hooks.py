"""MkDocs hooks (``mkdocs.yml``: ``hooks``): the site reads two things from the repository.

- Figures: the result figures live beside the runs that made them (``toy/results/``,
  ``gpu_validation/results/``); every PNG there is published at ``figures/<its repository
  path>``, so a page shows ``figures/toy/results/toy_trajectories.png`` without a copy in
  ``docs/``.
- Underscores: the pages write maths as plain text (η̃_t = η_t/(c_t c_{t+1})), and Markdown
  would read ``_t = η_t/(c_t c_`` as emphasis (a combining tilde does not count as part of a
  word). Underscore emphasis is switched off on every page and docstring; emphasis is
  written ``*like this*``.
- The clause list: ``<!-- clauses -->`` on a page becomes, per row of the main job's table,
  each clause and the tools that check it, written by the main job's own report code from the
  registry ``exp_lr_verify.claims.CLAUSES`` (the list its ``report.md`` carries).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

FIGURE_DIRS = ("toy/results", "gpu_validation/results")
CLAUSES_MARKER = "<!-- clauses -->"


class NoUnderscoreEmphasis(Extension):
    """Markdown without ``_emphasis_`` and ``__strong__`` (``*`` and ``**`` still work)."""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Markdown's API
        if "em_strong2" in md.inlinePatterns:  # Python-Markdown < 3.11: its own processor
            md.inlinePatterns.deregister("em_strong2")
        delimiters = getattr(md, "delimiters", None)  # 3.11+: one processor for * and _
        if delimiters is not None and hasattr(delimiters, "remove"):
            delimiters.remove("_")


@event_priority(100)  # before mkdocstrings reads the extensions for the docstrings
def on_config(config: Any) -> Any:
    config["markdown_extensions"].append(NoUnderscoreEmphasis())
    return config


def _root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def on_files(files: Files, config: Any) -> Files:
    root = _root(config)
    for folder in FIGURE_DIRS:
        for png in sorted((root / folder).rglob("*.png")):
            uri = "figures/" + png.relative_to(root).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if CLAUSES_MARKER not in markdown:
        return markdown
    from exp_lr_verify import report
    from exp_lr_verify.claims import CLAIMS, CLAUSES, FURTHER_TEXT, GPU_CLAIM, Claim

    texts = {key: text for key, text, _ in CLAIMS}
    texts[GPU_CLAIM[0]] = GPU_CLAIM[1]
    texts["further_results"] = FURTHER_TEXT
    claims = [Claim(key, texts[key], None) for key in CLAUSES]
    return markdown.replace(CLAUSES_MARKER, "\n".join(report.clause_lines(claims)))
