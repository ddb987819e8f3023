"""docker-compose.yml has no working default secret and no dev switch; the dev override holds the
simulator and K4U_ALLOW_PRIVATE_URLS; the workers are split by role; every image is pinned to a
version; the services reach MinIO as a user limited to their bucket, not as root. The files are
checked as YAML (compose's `${VAR:?message}` / `${VAR:-default}` syntax read by hand) and against
the Compose Specification by Debian's `docker-compose config` (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.services import unavailable

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
    for service in ("api", "worker", "worker-download", "worker-notify", "worker-oneshot", "beat"):
        assert service in base["services"]
        assert dev_envs[service]["K4U_ALLOW_PRIVATE_URLS"] == "true"
        assert dev_envs[service]["K4U_BASE_URL"] == "http://simulator:9100"


def test_workers_are_split_by_role() -> None:
    services = load("docker-compose.yml")["services"]
    roles = {name: svc["command"][svc["command"].index("--role") + 1] for name, svc in services.items() if svc.get("command", [])[:2] == ["k4u", "worker"]}
    assert roles == {"worker": "engine", "worker-download": "download", "worker-notify": "notify", "worker-oneshot": "oneshot"}
    names = [svc["command"][svc["command"].index("--name") + 1] for name, svc in services.items() if name in roles]
    assert len(set(names)) == 4


def test_env_example_names_every_required_variable_and_sets_none() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    assert required <= set(example)
    assert all(example[name] == "" for name in required)


# A release, never a floating tag: `16.10-alpine`, `7.4.6-alpine`, `RELEASE.2025-09-07T16-13-09Z`.
PINNED_TAG = re.compile(r"^(\d+\.\d+[\w.-]*|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$")


def test_every_image_is_pinned_to_a_release() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name in ("docker-compose.yml", "docker-compose.dev.yml"):
        for service, svc in load(name)["services"].items():
            image = svc.get("image") or load("docker-compose.yml")["services"].get(service, {}).get("image")
            repo, _, tag = str(image).rpartition(":")
            assert repo and PINNED_TAG.match(tag), f"{name}: {service} uses {image!r}"
            if repo == "key4u-jobs":  # our own build is tagged with the package's version
                assert tag == version, f"{name}: {service} uses {image!r}, the package is {version}"


def test_the_services_use_a_minio_user_limited_to_their_bucket() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    doc = load("docker-compose.yml")
    envs = environments(doc)
    bucket = envs["api"]["K4U_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    for service in ("migrate", "api", "worker", "worker-download", "worker-notify", "beat", "flower"):
        env = envs[service]
        assert not any("MINIO_ROOT" in v for v in env.values()), f"{service} gets MinIO's root credentials"
        assert env["AWS_ACCESS_KEY_ID"].startswith("${MINIO_K4U_USER") and env["AWS_SECRET_ACCESS_KEY"].startswith("${MINIO_K4U_PASSWORD:?")
    assert "${MINIO_K4U_PASSWORD:?" in text and "MINIO_K4U_PASSWORD" in (ROOT / ".env.example").read_text()
    setup = doc["services"]["minio-setup"]
    mounts = {m.split(":")[1]: ROOT / m.split(":")[0] for m in setup["volumes"]}
    script = setup["entrypoint"][-1]
    for step in (
        f"mc mb --ignore-existing local/{bucket}",
        "mc admin user add local",
        "mc admin policy create local k4u-readwrite",
        "mc admin policy attach local k4u-readwrite --user",
    ):
        assert step in script, step
    assert setup["environment"]["MINIO_K4U_PASSWORD"].startswith("${MINIO_K4U_PASSWORD:?")
    policy = json.loads(mounts["/setup/minio-policy.json"].read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    assert all(statement["Effect"] == "Allow" and "s3:*" not in statement["Action"] for statement in policy["Statement"])


def test_the_api_presigns_for_the_address_outside_clients_reach() -> None:
    doc = load("docker-compose.yml")
    assert environments(doc)["api"]["K4U_S3_PUBLIC_ENDPOINT_URL"] == "http://localhost:9000"
    assert "127.0.0.1:9000:9000" in doc["services"]["minio"]["ports"]
    assert "K4U_S3_PUBLIC_ENDPOINT_URL" not in environments(doc)["worker"]  # only the API presigns


def test_compose_files_pass_the_compose_validator(tmp_path: Path) -> None:
    """`docker-compose config -q` on the base file and on base + dev override, every required
    variable given a value by a throwaway env file (no .env, no environment of ours)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        unavailable("docker-compose (Debian's package docker-compose; .ci/run installs it)")
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{name}=x\n" for name in sorted(required)))
    for files in (["docker-compose.yml"], ["docker-compose.yml", "docker-compose.dev.yml"]):
        args = [str(binary), "--project-directory", str(ROOT), "--env-file", str(env_file)]
        r = subprocess.run(
            [*args, *(a for f in files for a in ("-f", str(ROOT / f))), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert r.returncode == 0 and not r.stderr.strip(), (files, r.stderr)
