#!/usr/bin/env bash
# `make lab`: JupyterLab on the tour notebook, with the project's JupyterLab settings (jupyter/settings/).
#
#   scripts/lab.sh [more jupyter lab options]      VENV=.venv by default
#
# * The printed URL (and the page a browser opens) is the tour itself, /lab/tree/notebooks/01_tour.ipynb?token=...
#   (LabApp.default_url), not the Launcher.
# * jupyter/settings/overrides.json changes JupyterLab's defaults: no "get notified about Jupyter news?" prompt,
#   no update check.  A choice the user saved in their own JupyterLab settings still wins.
# * A browser is opened only where one can be: not on a Linux machine without a display (where Python's
#   webbrowser would start a text-mode browser in this terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
args=(
    --ip=127.0.0.1
    --LabApp.default_url=/lab/tree/notebooks/01_tour.ipynb
    "--LabApp.app_settings_dir=$PWD/jupyter/settings"
)
if [ "$(id -u)" = 0 ]; then
    args+=(--allow-root)
fi
if [ "$(uname -s)" = Linux ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    args+=(--no-browser)
fi
exec "$venv/bin/jupyter" lab "${args[@]}" "$@"
