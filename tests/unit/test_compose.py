"""docker-compose.yml has no working default secret and no dev switch; the dev override holds the
simulator and K4U_ALLOW_PRIVATE_URLS; the workers are split by role. (No Docker engine here: the
files are checked as YAML, with compose's `${VAR:?message}` / `${VAR:-default}` syntax read by hand.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|BASIC_AUTH|DATABASE_URL")
REQUIRED = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
VAR = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())  # type: ignore[no-any-return]


def environments(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {name: {k: str(v) for k, v in (svc.get("environment") or {}).items()} for name, svc in doc["services"].items()}


def test_every_secret_in_the_base_file_is_required_without_default() -> None:
    envs = environments(load("docker-compose.yml"))
    checked = 0
    for service, env in envs.items():
        for key, value in env.items():
            if not SECRET_NAME.search(key):
                continue
            checked += 1
            refs = VAR.findall(value)
            assert refs, f"{service}.{key} is a literal: {value!r}"
            for var, op, _rest in refs:
                if SECRET_NAME.search(var):
                    assert op == ":?", f"{service}.{key} gives {var} a default"
            if key != "K4U_DATABASE_URL":
                assert REQUIRED.match(value), f"{service}.{key} = {value!r}"
    assert checked >= 10
    assert "${POSTGRES_PASSWORD:?" in envs["api"]["K4U_DATABASE_URL"]


def test_no_literal_credential_anywhere_in_the_base_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for literal in ("k4u-minio-secret", "change-this", "changeme", "whsec_MfKQ", "POSTGRES_PASSWORD: k4u"):
        assert literal not in text
    setup = load("docker-compose.yml")["services"]["minio-setup"]
    assert "$$MINIO_ROOT_PASSWORD" in " ".join(setup["entrypoint"])


def test_dev_switches_live_only_in_the_override() -> None:
    base, dev = load("docker-compose.yml"), load("docker-compose.dev.yml")
    assert "simulator" not in base["services"] and "simulator" in dev["services"]
    assert all("K4U_ALLOW_PRIVATE_URLS" not in env for env in environments(base).values())
    assert "simulator:9100" not in (ROOT / "docker-compose.yml").read_text()  # the base talks to the real relay
    dev_envs = environments(dev)
    for service in ("api", "worker", "worker-download", "worker-notify", "beat"):
        assert service in base["services"]
        assert dev_envs[service]["K4U_ALLOW_PRIVATE_URLS"] == "true"
        assert dev_envs[service]["K4U_BASE_URL"] == "http://simulator:9100"


def test_workers_are_split_by_role() -> None:
    services = load("docker-compose.yml")["services"]
    roles = {name: svc["command"][svc["command"].index("--role") + 1] for name, svc in services.items()
             if svc.get("command", [])[:2] == ["k4u", "worker"]}
    assert roles == {"worker": "engine", "worker-download": "download", "worker-notify": "notify"}
    names = [svc["command"][svc["command"].index("--name") + 1] for name, svc in services.items() if name in roles]
    assert len(set(names)) == 3


def test_env_example_names_every_required_variable_and_sets_none() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required <= set(example)
    assert all(example[name] == "" for name in required)
