#!/usr/bin/env bash
# HealthSpace developer entry point. Sets up everything on a new machine, then runs:
#   ./hs up [--port N]   set up (venv, packages, NHS.UK frontend, database, demo data) and serve
#   ./hs test [ARGS]     ruff, then the whole test suite (DATABASE_URL selects the database)
#   ./hs <command>       any other healthspace command (import, export, migrate, ...)
set -euo pipefail
cd "$(dirname "$0")"

find_python() {
  local candidates=(python3.13 python3.12 python3 "$HOME"/.pyenv/versions/3.13*/bin/python "$HOME"/.pyenv/versions/3.12*/bin/python)
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  echo "HealthSpace needs Python 3.12 or newer (python3.12 was not found)." >&2
  return 1
}

setup() {
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  # Re-install only when pyproject.toml changed since the last install.
  local stamp=.venv/.healthspace-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    touch "$stamp"
  fi
  if [ ! -d node_modules/nhsuk-frontend ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    command -v npm >/dev/null || { echo "HealthSpace needs Node.js and npm for the NHS.UK frontend." >&2; exit 1; }
    npm ci --no-audit --no-fund --loglevel=error
  fi
  # NHS.UK frontend styles compiled from Sass (no font fetched from a third party).
  local css=build/static/healthspace.css
  if [ ! -f "$css" ] || [ -n "$(find src/healthspace/web/scss package-lock.json -newer "$css" 2>/dev/null | head -1)" ]; then
    npm run --silent build:css
  fi
}

cmd="${1:-up}"
[ $# -gt 0 ] && shift
setup
case "$cmd" in
  setup) ;;
  test)
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    exec .venv/bin/python -m pytest "$@"
    ;;
  *) exec .venv/bin/healthspace "$cmd" "$@" ;;
esac
