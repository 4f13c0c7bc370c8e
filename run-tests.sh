#!/usr/bin/env bash
# Everything CI proves, in the order a failure is cheapest to read:
#   ./run-tests.sh             on the database DATABASE_URL names; unset: your own PostgreSQL server,
#                              started on demand and left running for the notebooks (scripts/postgres;
#                              SQLite, with one line saying why, when it cannot start)
#   ./run-tests.sh --sqlite    on SQLite (.data/shelter.sqlite), whatever DATABASE_URL says
#   ./run-tests.sh --postgres  on a throwaway PostgreSQL started by scripts/postgres
#   ./run-tests.sh --all       SQLite, then PostgreSQL (what CI runs; about 11-12 minutes per database
#                              on a 2-core machine)
# Installs the CI and maintainer tools (requirements-ci.lock) into .venv on top of the learner's
# install (scripts/bootstrap --ci).
set -euo pipefail
cd "$(dirname "$0")"

case "${1:-}" in
    --all)
        "$0" --sqlite
        exec "$0" --postgres ;;
    --sqlite)
        export DATABASE_URL="sqlite+aiosqlite:///$PWD/.data/shelter.sqlite" ;;
    --postgres)
        # A server that was already running is left running; one this run starts, it stops at the end.
        if scripts/postgres status >/dev/null 2>&1; then started_here=""; else started_here=1; fi
        DATABASE_URL=$(scripts/postgres start)
        export DATABASE_URL
        if [ -n "$started_here" ] && [ -z "${KEEP_POSTGRES:-}" ]; then
            echo "run-tests: started a throwaway PostgreSQL server for this run; it is stopped at the end (KEEP_POSTGRES=1 keeps it)" >&2
            trap 'scripts/postgres stop >/dev/null 2>&1 && echo "run-tests: stopped the PostgreSQL server this run started" >&2' EXIT
        fi ;;
    "") ;;
    *) echo "usage: $0 [--sqlite | --postgres | --all]" >&2; exit 2 ;;
esac

scripts/bootstrap --ci
if [ -z "${DATABASE_URL:-}" ]; then
    # The default: the user's own server (started once, reused by the notebooks), or SQLite.
    DATABASE_URL=$(.venv/bin/python -m course.database url)
    export DATABASE_URL
fi
py=.venv/bin/python
db=$($py -m course.database describe)
step() { printf '\n=== [%s] %s\n' "$db" "$*"; }
# nbval runs cells in order; pytest-randomly must not shuffle them. pyproject.toml turns the
# nbval plugin off (-p no:nbval: its import costs every other pytest run seconds); -p nbval turns it on.
# course.nbval_database: a cell tagged output-per-database is compared with its own database's output.
nbval=(-p nbval -p course.nbval_database -p no:randomly --nbval-current-env -n 2 --dist loadfile)

step "generated files are current (learner notebooks, instructor guide, glossary, workshop run sheets)"
$py -m course check
$py -m course lock --check   # requirements.lock and binder/requirements.txt agree with requirements.txt
$py -m course publish --check   # README launch links + notebooks table, and INSTRUCTOR_GUIDE.md
$py -m course errors --check
$py -m course figures --check
$py -m course claims --check   # one verdict per published claim (course/claims.toml)
$py -m course refs --check     # every "lesson NN" reference resolves to the lesson that teaches its topic
$py -m course glossary --check   # GLOSSARY.md, and every lesson links the first use of each term
$py -m course workshop --check   # workshop/one-day.md and half-day.md, and no section they name is missing

step "reference suite, random order"
$py -m pytest tests
step "reference suite, declared order, 2 xdist workers (one database each)"
$py -m pytest tests -p no:randomly -n 2 -q
step "reference suite, the tests that start processes of their own (pytest runs, servers)"
$py -m pytest tests -m subprocess -p no:randomly -q
step "no rows left in any test database"
$py -m course.database check-empty
step "benchmark, smoke mode: every strategy runs and isolates on this database (its timings mean nothing)"
$py -m pytest bench/test_bench.py -p no:randomly -q

step "the app served by python -m app: 20 x 20 parallel requests from loopback, invariants (scripts/serve-check)"
$py scripts/serve-check
step "Schemathesis fuzzes the served app's OpenAPI schema: no 5xx, answers match it (fixed seed)"
$py scripts/serve-check fuzz

step "solutions: every cell runs, outputs match (nbval, sanitised)"
$py -m pytest "${nbval[@]}" --nbval --nbval-sanitize-with course/nbval-sanitize.cfg solutions
step "learner notebooks: run top to bottom untouched with no error; every exercise check rejects the wrong answers in tests/exercise_answers/ and accepts the solution"
$py -m course learner-path --jobs 2

step "all green"
