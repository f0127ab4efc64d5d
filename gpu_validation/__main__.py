"""``python -m gpu_validation``: see :mod:`gpu_validation.cli`."""

from .cli import main

raise SystemExit(main())
