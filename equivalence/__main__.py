"""``python -m equivalence``: see :mod:`equivalence.cli`."""

from .cli import main

raise SystemExit(main())
