"""What a Binder or hub session offers beyond the notebooks, in a real Jupyter server.

The server runs under a hub-like prefix (``/user/learner/``) with a token, as on Binder:
- the "Shelter API" proxy entry (course/proxy.py) starts the sample app, and its Swagger UI and
  OpenAPI schema answer through the proxy, with links that carry the prefix;
- nbgitpuller's handler is loaded, so the instructor guide's one-click link works.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from course.proxy import NAME, shelter_api
from tests.test_postgres_script import _free_port as free_port

pytestmark = pytest.mark.subprocess  # starts a Jupyter server and the app

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "course-session-test"
PREFIX = "/user/learner/"


def test_the_proxy_entry_starts_the_app_with_the_prefix_it_is_served_under():
    settings = shelter_api()
    assert settings["command"][1:] == ["-m", "app"]
    assert settings["environment"] == {"PORT": "{port}", "ROOT_PATH": "{base_url}" + NAME}
    assert settings["launcher_entry"]["path_info"] == f"{NAME}/docs"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A Jupyter server as Binder starts one: token auth, a base URL, the course installed."""
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               DATABASE_URL=f"sqlite+aiosqlite:///{home / 'shelter.sqlite'}")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.base_url={PREFIX}", f"--ServerApp.root_dir={ROOT}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}{PREFIX}"
    client = httpx.Client(base_url=base, headers={"Authorization": f"token {TOKEN}"}, timeout=60)
    try:
        deadline = time.monotonic() + 120  # bounds a hang; the assertions are about behaviour
        while True:
            try:
                if client.get("api/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, f"jupyter server exited: {server.stdout.read()}"
            assert time.monotonic() < deadline, "jupyter server did not answer within 120 s"
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_swagger_ui_of_the_sample_app_opens_through_the_proxy(jupyter):
    docs = jupyter.get(f"{NAME}/docs")  # the first request starts the app (up to the entry's timeout)
    assert docs.status_code == 200, docs.text[:500]
    assert "swagger-ui" in docs.text
    # The page asks for the schema under the prefix the browser sees, not at the server's root.
    assert re.search(rf"url: '{re.escape(PREFIX + NAME)}/openapi\.json'", docs.text), docs.text[:2000]
    # Swagger UI's own files, served by the app under the same prefix (no CDN: works offline)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"'{PREFIX}{NAME}/docs-assets/{asset}'" in docs.text or f'"{PREFIX}{NAME}/docs-assets/{asset}"' in docs.text
        served = jupyter.get(f"{NAME}/docs-assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000, asset
    schema = jupyter.get(f"{NAME}/openapi.json")
    assert schema.status_code == 200
    assert "/animals" in schema.json()["paths"]
    created = jupyter.post(f"{NAME}/animals", json={"name": "Proxy", "species": "cat"})
    assert created.status_code == 201, created.text
    assert jupyter.get(f"{NAME}/animals/{created.json()['id']}").json()["name"] == "Proxy"


def test_the_proxy_needs_the_token_like_the_rest_of_the_server(jupyter):
    anonymous = httpx.get(str(jupyter.base_url) + f"{NAME}/openapi.json", timeout=60, follow_redirects=False)
    assert anonymous.status_code in (302, 403), anonymous.status_code


def test_nbgitpuller_is_loaded_so_the_guide_link_works(jupyter):
    pulled = jupyter.get("git-pull", follow_redirects=False)
    assert pulled.status_code != 404, "nbgitpuller's /git-pull handler is not there"
    unknown = jupyter.get("no-such-handler", follow_redirects=False)
    assert unknown.status_code == 404  # control: an unknown path is a 404 here


def test_jupyterlab_defaults_of_this_environment_turn_the_news_off(jupyter):
    """The overrides scripts/bootstrap wrote are what JupyterLab serves as the settings' defaults."""
    notification = jupyter.get("lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert notification.status_code == 200, notification.text[:300]
    assert notification.json()["schema"]["properties"]["fetchNews"]["default"] == "false"
    jupytext = jupyter.get("lab/api/settings/jupyterlab-jupytext:plugin").json()["schema"]["properties"]
    assert not any(jupytext[key]["default"] for key in jupytext if key != "NOTE")
