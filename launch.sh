#!/usr/bin/env bash
# Install once (pinned, into .venv) and open the course in JupyterLab on notebook 00.
# Extra arguments go to JupyterLab, e.g. ./launch.sh --no-browser --port 8899
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap
# DATABASE_URL if set, else the user's own PostgreSQL server: started here (the first time: initdb,
# a few seconds), then found running by every notebook's setup cell and by the "Shelter API" tile,
# which start it again if it was stopped (scripts/postgres stop stops it). SQLite, with one line
# saying why, when it cannot start.
echo "Database: $(.venv/bin/python -m course.database describe)  (switch: see README, 'PostgreSQL or SQLite')" >&2
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
[ "$(id -u)" = 0 ] && set -- --allow-root "$@"
# Say where to open it, token included: JupyterLab prints it only deep in its own log.
case " $* " in
    *" --port"*|*"ServerApp.port"*|*"ServerApp.token"*|*"IdentityProvider.token"*) ;;  # the caller chose
    *)
        port=$(.venv/bin/python -c 'import socket
for port in range(8888, 8988):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port)); print(port); break
        except OSError:
            pass')
        # The token goes through the environment (JUPYTER_TOKEN), never as an argument: every
        # local user can read a process's arguments (/proc/PID/cmdline), not its environment.
        JUPYTER_TOKEN=${JUPYTER_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(24))')}
        export JUPYTER_TOKEN
        token=$JUPYTER_TOKEN
        set -- --port "$port" "$@"
        echo "" >&2
        echo "  The course opens in your browser. If it does not, open:" >&2
        echo "  http://localhost:$port/lab/tree/notebooks/00_start_here.ipynb?token=$token" >&2
        echo "  (Stop JupyterLab with Ctrl+C here.)" >&2
        echo "" >&2 ;;
esac
exec .venv/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb "$@"
