#!/usr/bin/env bash
# Everything CI proves, in the order a failure is cheapest to read:
#   ./run-tests.sh             on the database DATABASE_URL names (unset: SQLite)
#   ./run-tests.sh --postgres  on a throwaway PostgreSQL started by scripts/postgres
#   ./run-tests.sh --all       SQLite, then PostgreSQL (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

case "${1:-}" in
    --all)
        env -u DATABASE_URL "$0"
        exec "$0" --postgres ;;
    --postgres)
        DATABASE_URL=$(scripts/postgres start)
        export DATABASE_URL ;;
    "") ;;
    *) echo "usage: $0 [--postgres | --all]" >&2; exit 2 ;;
esac

scripts/bootstrap
py=.venv/bin/python
db=$($py -m course.database describe)
step() { printf '\n=== [%s] %s\n' "$db" "$*"; }
# nbval runs cells in order; pytest-randomly must not shuffle them.
nbval=(-p no:randomly --nbval-current-env -n 2 --dist loadfile)

step "generated files are current (learner notebooks, instructor guide)"
$py -m course check
$py -m course guide --check
$py -m course errors --check
$py -m course figures --check

step "reference suite, random order"
$py -m pytest tests
step "reference suite, declared order, 2 xdist workers (one database each)"
$py -m pytest tests -p no:randomly -n 2 -q
step "no rows left in any test database"
$py -m course.database check-empty

step "solutions: every cell runs, outputs match (nbval, sanitised)"
$py -m pytest "${nbval[@]}" --nbval --nbval-sanitize-with course/nbval-sanitize.cfg solutions
step "learner notebooks: every cell but the learner's own exercises runs (nbval-lax)"
$py -m pytest "${nbval[@]}" --nbval-lax notebooks

step "all green"
