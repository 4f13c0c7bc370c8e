"""The sample app inside a Jupyter session: a jupyter-server-proxy entry ("Shelter API" in the
JupyterLab launcher) that starts ``python -m app`` and serves it, Swagger UI included, under
``<base_url>shelter-api/`` of the same server: on Binder and on a hub the learner opens
``.../shelter-api/docs`` next to ``.../lab`` with no port to expose and no extra login.

The app listens on a Unix socket in a directory only the learner can enter (jupyter-server-proxy
makes it with ``mkdtemp``, mode 700), not on a loopback TCP port: on a shared machine another
user could reach a port directly, past Jupyter's token, and write to the learner's database.

Registered through the ``jupyter_serverproxy_servers`` entry point in pyproject.toml, so any
environment with the course installed (``pip install -e .``) and jupyter-server-proxy has it.
"""

from __future__ import annotations

import sys

NAME = "shelter-api"


def shelter_api() -> dict:
    """jupyter-server-proxy's server-process settings for the sample app.

    The proxy strips ``<base_url>shelter-api`` before it forwards a request (absolute_url is
    False), so the app sees ``/docs`` and ``/openapi.json``; ROOT_PATH tells it the prefix the
    browser sees, so the Swagger page asks for ``<base_url>shelter-api/openapi.json``.
    """
    return {
        "command": [sys.executable, "-m", "app", "--uds", "{unix_socket}"],
        "unix_socket": True,  # a socket in a new private directory, instead of a TCP port
        "environment": {"ROOT_PATH": "{base_url}" + NAME},
        "absolute_url": False,
        "timeout": 60,
        "new_browser_tab": True,
        "launcher_entry": {"title": "Shelter API (Swagger UI)", "path_info": f"{NAME}/docs"},
    }
