"""``python -m cam_widget ...`` runs the command line (see :mod:`cam_widget.cli`)."""

from .cli import main

if __name__ == "__main__":  # not when a spawned process (a Dask LocalCluster worker) re-imports this module
    raise SystemExit(main())
