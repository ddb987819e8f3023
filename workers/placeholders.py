"""Template values that must never be a deployment's secret (a setting holding one is refused at start)."""

from __future__ import annotations

# Values found in templates and docs (the Standard Webhooks example key among them): a deployment
# that kept one has a secret the whole world knows.
_PLACEHOLDERS = frozenset(
    {
        "changeme",
        "changethis",
        "changethistoken",
        "changethispassword",
        "changethissecret",
        "example",
        "placeholder",
        "secret",
        "password",
        "token",
        "apitoken",
        "yourtoken",
        "yoursecret",
        "xxx",
        "todo",
        "test",
        "replaceme",
        "mfkq9r8gkyqrtwjupd8ilpzio2lalasw",
    }
)


def is_placeholder(value: str) -> bool:
    """True for template values such as `changeme`, `change-this-token`, `whsec_changeme`."""
    core = value.strip().lower().removeprefix("whsec_")
    return "".join(c for c in core if c.isalnum()) in _PLACEHOLDERS
