#!/usr/bin/env bash
# Install once (pinned, into .venv) and open the course in JupyterLab on notebook 00.
# Extra arguments go to JupyterLab, e.g. ./launch.sh --no-browser --port 8899
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap
echo "Database: $(.venv/bin/python -m course.database describe)  (switch: see README, 'SQLite or PostgreSQL')" >&2
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
[ "$(id -u)" = 0 ] && set -- --allow-root "$@"
exec .venv/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb "$@"
