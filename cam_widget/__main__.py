"""``python -m cam_widget ...`` runs the command line (see :mod:`cam_widget.cli`)."""

from .cli import main

raise SystemExit(main())
