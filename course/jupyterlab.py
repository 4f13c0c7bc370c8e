"""``python -m course.jupyterlab``: JupyterLab's defaults for this environment, for every user.

JupyterLab reads ``{sys.prefix}/share/jupyter/lab/settings/overrides.json`` as the default of each
setting (a user's own settings still win). scripts/bootstrap and binder/postBuild write it:

- no "Would you like to get notified about official Jupyter news?" pop-up, and no request to
  jupyter.org for news or for a newer JupyterLab (the course works offline);
- no Jupytext section in the launcher (its "text notebook" formats: a learner opens the
  notebooks in ``notebooks/``; Jupytext still opens ``lessons/*.py`` as notebooks).

Settings another tool already wrote into the file are kept; only these keys are set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    # every format the Jupytext extension would add to the launcher (its schema's defaults: two are on)
    "jupyterlab-jupytext:plugin": {key: False for key in (
        "auto:percent", "auto:light", "auto:hydrogen", "auto:nomarker", "py:marimo", "md:myst", "md", "Rmd", "qmd")},
}


def overrides_path(prefix: str = sys.prefix) -> Path:
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def write(prefix: str = sys.prefix) -> Path:
    path = overrides_path(prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    for plugin, settings in OVERRIDES.items():
        current.setdefault(plugin, {}).update(settings)
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(f"JupyterLab defaults written to {write()}")
