"""Print the README's quick-start commands, one per line, exactly as written there.

The quick start is the first ```bash block under the heading "## Quick start"; every
line of it that is neither blank nor a comment is one command. CI runs these lines
verbatim, so the README and CI cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path


def quickstart_commands(readme: str) -> list[str]:
    """The command lines of the first ```bash block under "## Quick start"."""
    lines = readme.splitlines()
    try:
        start = lines.index("## Quick start")
    except ValueError:
        raise SystemExit("README.md has no '## Quick start' heading") from None
    fence = next((i for i in range(start, len(lines)) if lines[i].strip() == "```bash"), None)
    if fence is None:
        raise SystemExit("the quick start of README.md has no ```bash block")
    commands = []
    for line in lines[fence + 1 :]:
        if line.strip() == "```":
            return commands
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    raise SystemExit("the quick start's ```bash block is not closed")


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    cmds = quickstart_commands(path.read_text(encoding="utf-8"))
    if len(cmds) != 2:
        raise SystemExit(f"expected two quick-start commands in {path}, found {len(cmds)}: {cmds}")
    print("\n".join(cmds))
