"""``python -m autolog`` is the ``autolog`` command."""

from autolog.cli import main

raise SystemExit(main())
