"""docs/configuration.md is generated from Settings (as docs/state-machine.md is from the transition table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workers.settings import REGENERATE_DOCS, Settings, configuration_markdown, env_name

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_doc_is_current() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert doc == configuration_markdown(), f"docs/configuration.md is behind workers/settings.py: run `{REGENERATE_DOCS}`"


def test_every_setting_is_described_under_its_variable() -> None:
    text = configuration_markdown()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description: the reference would say nothing about it"
        assert f"\n| `{env_name(name, field)}` | " in text
    for variable in ("FLOWER_BASIC_AUTH", "K4U_POLL_BATCH_LIMIT", "K4U_PRESIGN_EXPIRES_S", "K4U_RELAY_CONNECT_TIMEOUT_S", "K4U_RELAY_TIMEOUT_S"):
        assert f"\n| `{variable}` | " in text


def test_types_and_defaults_read_as_people_write_them() -> None:
    text = configuration_markdown()
    assert "| `K4U_DOWNLOAD_MAX_BYTES` | integer, > 0 | 2 GiB (2147483648) |" in text
    assert "| `K4U_DOWNLOAD_TIMEOUT_S` | number, > 0 | 600 (10 min) |" in text
    assert "| `K4U_DOWNLOAD_WINDOW_S` | number, > 0 | 21600 (6 h) |" in text
    assert "| `K4U_PRESIGN_EXPIRES_S` | integer, ≥ 1, ≤ 604800 | 3600 (1 h) |" in text
    assert "| `K4U_LONGPOLL_INTERVAL_S` | number, > 0, ≤ 10 | 0.5 |" in text
    assert "| `K4U_API_KEY` | secret string | unset |" in text
    assert "| `K4U_BATCH_POLLING` | boolean | `true` |" in text
    assert "| `K4U_BASE_URL` | string | `https://api.key4u.shop` |" in text
    assert "`K4U_DOWNLOAD_TIMEOUT_S`, so a write" in text  # variables named in a description are marked as code


def test_the_command_prints_the_reference() -> None:
    out = subprocess.run([sys.executable, "-m", "workers.settings", "--markdown"], cwd=ROOT, capture_output=True, text=True, check=True, encoding="utf-8")
    assert out.stdout == configuration_markdown()
