"""The course works without internet: the app's docs pages serve their own assets, and JupyterLab
neither shows the news pop-up nor asks jupyter.org for news (defaults written by scripts/bootstrap)."""

import json
import re
import sys
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from course import jupyterlab

EXTERNAL = re.compile(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}[/'"]""")


async def get(path: str, root_path: str = "") -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(), root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://shelter.test") as client:
        return await client.get(path)


def asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("root_path", ["", "/user/ana/proxy/8000"])
async def test_the_docs_pages_reference_no_external_url_and_their_assets_are_served(page, root_path):
    # as uvicorn --root-path presents a proxied request: the prefix in both root_path and path
    html = (await get(root_path + page, root_path)).text
    assert EXTERNAL.findall(html) == [], "the page loads something from another site"
    urls = asset_urls(html)
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith(f"{root_path}/"), url  # under the proxy's prefix too
        served = await get(url, root_path)
        assert served.status_code == 200, url
        if url.endswith(".js"):
            assert len(served.content) > 100_000 and "javascript" in served.headers["content-type"]


async def test_negative_control_fastapis_default_docs_page_loads_from_a_cdn():
    from fastapi import FastAPI

    transport = httpx.ASGITransport(app=FastAPI())
    async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
        html = (await client.get("/docs")).text
    assert EXTERNAL.findall(html), "the check above would not notice a CDN"


def test_the_swagger_ui_served_renders_openapi_3_1():
    """FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on (4 says "no valid version")."""
    bundle = (Path(__import__("app.docs").docs.ASSETS) / "swagger-ui-bundle.js").read_text(errors="replace")
    assert create_app().openapi()["openapi"].startswith("3.1")
    assert "OpenAPI 3.1" in bundle or "openapi31" in bundle.lower() or "OAS31" in bundle


def test_jupyterlab_defaults_turn_the_news_off_and_hide_the_jupytext_launcher_items(tmp_path):
    path = jupyterlab.write(str(tmp_path))
    written = json.loads(path.read_text())
    assert written["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert not any(written["jupyterlab-jupytext:plugin"].values())
    # a setting someone else put there is kept
    written["@jupyterlab/apputils-extension:themes"] = {"theme": "JupyterLab Dark"}
    path.write_text(json.dumps(written))
    assert json.loads(jupyterlab.write(str(tmp_path)).read_text())["@jupyterlab/apputils-extension:themes"]


def test_every_default_names_a_setting_the_installed_jupyterlab_knows():
    """Against the schemas installed in this environment: a misspelt key would be ignored silently."""
    share = Path(sys.prefix) / "share" / "jupyter"
    for plugin, settings in jupyterlab.OVERRIDES.items():
        package, name = plugin.split(":")
        schemas = [*share.glob(f"lab/schemas/{package}/{name}.json"),
                   *share.glob(f"labextensions/{package}/schemas/{package}/{name}.json")]
        assert schemas, f"no schema for {plugin}"
        properties = json.loads(schemas[0].read_text())["properties"]
        assert set(settings) <= set(properties), set(settings) - set(properties)
        for key, value in settings.items():
            allowed = [c["const"] for c in properties[key].get("oneOf", []) if "const" in c]
            assert not allowed or value in allowed, (key, value, allowed)


def test_bootstrap_wrote_the_defaults_into_this_environment():
    written = json.loads(jupyterlab.overrides_path().read_text())
    assert written["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
