"""A PEP 517 build backend for the rollback-isolation distribution: no dependencies, no network.

The wheel's module ``rollback_isolation.py`` is the course's ``tests/isolation.py`` copied byte
for byte at build time (from an sdist: the copy the sdist carries). Nothing is generated into the
repository, so the copyable file stays the one source. Next to it, ``rollback_isolation_plugin.py``
(stored here) is the opt-in pytest plugin, the wheel's ``pytest11`` entry point.
"""

import base64
import hashlib
import io
import tarfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULE = "rollback_isolation"
PLUGIN = "rollback_isolation_plugin"  # the opt-in pytest plugin: a file of its own, so MODULE stays the copyable one
ENTRY_POINTS = f"[pytest11]\nrollback_isolation = {PLUGIN}\n"
WHEEL_TAG = "py3-none-any"


def _source() -> bytes:
    """The helper's bytes: the repository's tests/isolation.py, else the sdist's copy."""
    for candidate in (HERE.parent.parent / "tests" / "isolation.py", HERE / f"{MODULE}.py"):
        if candidate.is_file():
            return candidate.read_bytes()
    raise FileNotFoundError("tests/isolation.py not found: build from the course's repository or from its sdist")


def _project() -> dict:
    return tomllib.loads((HERE / "pyproject.toml").read_text())["project"]


def _metadata() -> str:
    project = _project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project['description']}",
        f"License: {project['license']}",
        f"Requires-Python: {project['requires-python']}",
        *(f"Requires-Dist: {requirement}" for requirement in project["dependencies"]),
    ]
    return "\n".join(lines) + "\n"


def _dist_name() -> str:
    project = _project()
    return f"{project['name'].replace('-', '_')}-{project['version']}"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist_info = f"{_dist_name()}.dist-info"
    files = {
        f"{MODULE}.py": _source(),
        f"{PLUGIN}.py": (HERE / f"{PLUGIN}.py").read_bytes(),
        f"{dist_info}/METADATA": _metadata().encode(),
        f"{dist_info}/entry_points.txt": ENTRY_POINTS.encode(),
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: backend.py\nRoot-Is-Purelib: true\nTag: {WHEEL_TAG}\n".encode(),
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    name = f"{_dist_name()}-{WHEEL_TAG}.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))  # reproducible
            info.external_attr = 0o644 << 16
            wheel.writestr(info, data)
    return name


def build_sdist(sdist_directory, config_settings=None):
    base = _dist_name()
    files = {
        "pyproject.toml": (HERE / "pyproject.toml").read_bytes(),
        "backend.py": (HERE / "backend.py").read_bytes(),
        f"{MODULE}.py": _source(),
        f"{PLUGIN}.py": (HERE / f"{PLUGIN}.py").read_bytes(),
        "PKG-INFO": _metadata().encode(),
    }
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as sdist:
        for path, data in files.items():
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, 1767225600
            sdist.addfile(info, io.BytesIO(data))
    return name
