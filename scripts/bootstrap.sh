#!/usr/bin/env bash
# Creates ./.venv with Key4U Jobs and its test tools installed, on first use or when
# pyproject.toml changed. Needs only Python 3.11+ (no Redis, PostgreSQL or S3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.k4u-installed"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Key4U Jobs needs Python 3.11 or newer as '$py' (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
if [ ! -x "$venv/bin/k4u" ] || [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  echo "setting up $venv (first run only)..." >&2
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[dev]"
  touch "$stamp"
fi
