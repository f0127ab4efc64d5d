"""``python -m toy``: see :mod:`toy.cli`."""

from .cli import main

raise SystemExit(main())
