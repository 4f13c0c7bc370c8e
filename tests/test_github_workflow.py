"""The GitHub workflow runs what CI runs here: it cannot run on this machine, so its shape is checked.

actionlint cannot be installed here (its PyPI package downloads a binary from GitHub at build
time), so the file is audited by zizmor (a wheel on PyPI, run with --offline): a workflow syntax or
expression error, an action not pinned to a commit, a checkout that keeps its token, a template
injection, all fail the test with zizmor's own report. The rest checks what matters for a fork:
every job runs the README's own test command or builds the Binder image, the Pythons it tests are
the oldest and newest the project promises, and every script it calls exists in the repository.
"""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
PAGES = ROOT / ".github" / "workflows" / "pages.yml"
ALL_WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_the_workflow_runs_on_pushes_and_pull_requests():
    triggers = workflow()[True]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request"} <= set(triggers)


def test_the_tests_job_runs_the_readme_test_command_on_both_databases():
    steps = workflow()["jobs"]["tests"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert "./run-tests.sh --all" in commands
    assert "./run-tests.sh --all" in (ROOT / ".ci" / "run").read_text()  # the same command as CI here


def test_the_tests_job_covers_the_oldest_and_newest_python_the_project_promises():
    pythons = workflow()["jobs"]["tests"]["strategy"]["matrix"]["python"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    oldest = re.fullmatch(r">=\s*(3\.\d+)", project["requires-python"]).group(1)
    promised = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")]
    assert promised[0] == oldest
    assert {promised[0], promised[-1]} <= set(pythons)


def test_the_binder_job_builds_with_repo2docker_and_starts_through_binder_start():
    run = "\n".join(step.get("run", "") for step in workflow()["jobs"]["binder"]["steps"])
    assert "repo2docker" in run and "binder/start" in run
    assert (ROOT / "binder" / "start").exists()


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_every_local_script_the_workflow_calls_exists(path):
    text = path.read_text(encoding="utf-8")
    for script in set(re.findall(r"(?:\./|\b)((?:scripts|binder)/[\w.-]+|run-tests\.sh)", text)):
        assert (ROOT / script).exists(), f"{script} is called by the workflow but missing"


def zizmor() -> str:
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert found, "zizmor is not installed: it is pinned in requirements.txt (run scripts/bootstrap)"
    return found


@pytest.mark.subprocess
def test_every_workflow_is_audited():
    assert {WORKFLOW, PAGES} <= set(ALL_WORKFLOWS)


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_zizmor_finds_nothing_in_the_workflow(path):
    result = subprocess.run(
        [zizmor(), "--offline", "--no-progress", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.subprocess
def test_zizmor_does_reject_a_workflow_with_an_unpinned_action(tmp_path):
    """Negative control: the audit above can fail (a tag instead of a commit, a kept token)."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(WORKFLOW.read_text(encoding="utf-8").replace(
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "actions/checkout@v4"))
    result = subprocess.run(
        [zizmor(), "--offline", "--no-progress", str(bad)], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout + result.stderr


# --- the website's workflow (.github/workflows/pages.yml) ----------------------------------------------

def pages() -> dict:
    return yaml.safe_load(PAGES.read_text(encoding="utf-8"))


def test_the_pages_workflow_builds_checks_and_deploys_the_site_from_main():
    flow = pages()
    assert flow[True]["push"]["branches"] == ["main"]
    build = flow["jobs"]["build"]["steps"]
    runs = [step.get("run", "") for step in build]
    assert "scripts/bootstrap --ci" in runs  # the same locked packages as CI; Sphinx is in the CI lock
    assert ".venv/bin/python -m course site --out _build/site" in runs
    assert ".venv/bin/python -m course site --check _build/site" in runs
    upload = next(step for step in build if step.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/site"
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert any(step.get("uses", "").startswith("actions/deploy-pages@") for step in deploy["steps"])


def test_only_the_deploy_job_may_write_to_pages():
    flow = pages()
    assert flow["permissions"] == {"contents": "read"}
    assert "permissions" not in flow["jobs"]["build"]
    assert flow["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}


def test_zizmor_does_reject_a_pages_workflow_with_an_unpinned_deploy_action(tmp_path):
    """Negative control for the second workflow: the audit reads it (a tag instead of a commit fails)."""
    bad = tmp_path / ".github" / "workflows" / "pages.yml"
    bad.parent.mkdir(parents=True)
    text = PAGES.read_text(encoding="utf-8")
    bad.write_text(re.sub(r"actions/deploy-pages@[0-9a-f]{40}", "actions/deploy-pages@v5", text))
    assert bad.read_text() != text
    result = subprocess.run(
        [zizmor(), "--offline", "--no-progress", str(bad)], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout + result.stderr
