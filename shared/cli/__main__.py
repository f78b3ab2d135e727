"""``python -m shared.cli`` runs the same CLI as the ``vidluxe`` script."""

from shared.cli.main import main

raise SystemExit(main())
