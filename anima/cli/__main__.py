"""``python -m anima.cli``: the ``anima`` command."""

from anima.cli import main

raise SystemExit(main())
