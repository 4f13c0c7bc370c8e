"""What a Binder or hub session offers beyond the notebooks, in a real Jupyter server.

The server runs under a hub-like prefix (``/user/learner/``) with a token, as on Binder:
- the "Shelter API" proxy entry (course/proxy.py) starts the sample app, and its Swagger UI and
  OpenAPI schema answer through the proxy, with links that carry the prefix;
- the app listens on a Unix socket in a private directory, on no TCP port: another local user
  cannot reach it past Jupyter's token;
- nbgitpuller's handler is loaded, so the instructor guide's one-click link works.
"""

import os
import re
import secrets
import signal
import stat
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
TOKEN = secrets.token_hex(16)  # given as JUPYTER_TOKEN: an argument would be public (/proc/PID/cmdline)
PREFIX = "/user/learner/"


def test_the_proxy_entry_starts_the_app_with_the_prefix_it_is_served_under():
    settings = shelter_api()
    assert settings["command"][1:] == ["-m", "app", "--uds", "{unix_socket}"]
    assert settings["unix_socket"] is True  # jupyter-server-proxy makes a private directory for it
    assert settings["environment"] == {"ROOT_PATH": "{base_url}" + NAME}
    assert settings["launcher_entry"]["path_info"] == f"{NAME}/docs"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A Jupyter server as Binder starts one: token auth, a base URL, the course installed."""
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               DATABASE_URL=f"sqlite+aiosqlite:///{home / 'shelter.sqlite'}", JUPYTER_TOKEN=TOKEN)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--ServerApp.base_url={PREFIX}", f"--ServerApp.root_dir={ROOT}"],
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
        client.server_pid = server.pid
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


# --- the app's only door is Jupyter --------------------------------------------------------------

def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
        if found:
            inodes.add(found.group(1))
    return inodes


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (IPv4 and IPv6), from /proc/net/tcp*."""
    inodes, ports = _socket_inodes(pid), set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def listening_unix_sockets(pid: int) -> set[str]:
    inodes = _socket_inodes(pid)
    paths = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and fields[3] == "00010000":  # __SO_ACCEPTCON: listening
            paths.add(fields[7])
    return paths


def descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
def test_the_proxied_app_listens_on_a_private_unix_socket_and_no_tcp_port(jupyter):
    assert jupyter.get(f"{NAME}/openapi.json").status_code == 200  # started (and reachable) through Jupyter
    apps = [pid for pid in descendants(jupyter.server_pid)
            if b"\0-m\0app\0" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(apps) == 1, apps
    app = apps[0]
    # Negative control: the same reading finds the Jupyter server's own port.
    assert int(str(jupyter.base_url).split(":")[2].split("/")[0]) in listening_tcp_ports(jupyter.server_pid)
    assert listening_tcp_ports(app) == set()  # nothing any local user could connect to directly
    sockets = listening_unix_sockets(app)
    assert len(sockets) == 1, sockets
    directory = Path(next(iter(sockets))).parent
    info = directory.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid(), (directory, oct(info.st_mode))


def test_the_proxy_needs_the_token_for_the_app_too(jupyter):
    url = str(jupyter.base_url) + f"{NAME}/animals"
    anonymous = httpx.post(url, json={"name": "Intruder", "species": "cat"}, timeout=60, follow_redirects=False)
    assert anonymous.status_code in (302, 403), anonymous.status_code
    wrong = httpx.post(url, json={"name": "Intruder", "species": "cat"}, timeout=60, follow_redirects=False,
                       headers={"Authorization": "token not-the-token"})
    assert wrong.status_code in (302, 403), wrong.status_code
    assert jupyter.get(f"{NAME}/animals").status_code == 200  # control: with the token it answers


def test_jupyterlab_defaults_of_this_environment_turn_the_news_off(jupyter):
    """The overrides scripts/bootstrap wrote are what JupyterLab serves as the settings' defaults."""
    notification = jupyter.get("lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert notification.status_code == 200, notification.text[:300]
    assert notification.json()["schema"]["properties"]["fetchNews"]["default"] == "false"
    jupytext = jupyter.get("lab/api/settings/jupyterlab-jupytext:plugin").json()["schema"]["properties"]
    assert not any(jupytext[key]["default"] for key in jupytext if key != "NOTE")
