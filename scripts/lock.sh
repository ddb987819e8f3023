#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml, for Python 3.11 and up on any platform:
#   requirements.lock      the application (what the Docker image installs)
#   requirements-dev.lock  plus the dev and embedded extras (./k4u, ./run-tests and CI install it)
# Run it after changing a dependency in pyproject.toml, and to take newer releases (--upgrade, or
# --upgrade-package NAME); tests/unit/test_packaging.py checks the locks against pyproject.toml.
# Uses uv (`pip install uv`; UV=/path/to/uv to pick one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv="${UV:-uv}"
compile=("$uv" pip compile pyproject.toml --universal --python-version 3.11 --no-emit-package key4u-jobs -q "$@")
"${compile[@]}" -o requirements.lock \
  --custom-compile-command "scripts/lock.sh"
"${compile[@]}" --extra dev --extra embedded -o requirements-dev.lock \
  --custom-compile-command "scripts/lock.sh"
