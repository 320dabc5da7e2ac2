"""``python -m clients``: the same as the ``musicldm-send`` command."""

from clients.cli import main

raise SystemExit(main())
