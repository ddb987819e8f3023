#!/usr/bin/env bash
# Creates ./.venv with Key4U Jobs and its test tools installed, on first use or when
# pyproject.toml or requirements-dev.lock changed: the locked versions (scripts/lock.sh; the dev
# and embedded extras included), then the package itself, editable, without resolving again.
# Needs only Python 3.11+ (no Redis, PostgreSQL or S3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.k4u-installed"
lock="$root/requirements-dev.lock"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Key4U Jobs needs Python 3.11 or newer as '$py' (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
if [ ! -x "$venv/bin/k4u" ] || [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "setting up $venv (first run, or pyproject.toml / requirements-dev.lock changed)..." >&2
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$lock"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$root"
  touch "$stamp"
fi
