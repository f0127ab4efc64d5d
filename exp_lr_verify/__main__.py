"""``python -m exp_lr_verify``: the main job (see :mod:`exp_lr_verify`)."""

from exp_lr_verify.cli import main

raise SystemExit(main())
