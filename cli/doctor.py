"""`k4u doctor`: one free question per route to the configured relay, and what its answer says.

Each family's adapter names its probes (`providers.base.Probe`: by default the first read of each
operation's poll flow, for a task that does not exist). They go through the one relay client
(`workers.relay.Relay`: it adds the key and applies K4U_ROUTE_PREFIXES), a few at a time, each
bounded by --timeout and the whole run by twice that; only reads are ever sent. `classify` turns
an answer into a verdict:

- 401/403: the key is refused;
- 404/405 whose body says the route is unknown (new-api's `Invalid URL (GET /x)`, an HTML, plain
  text or empty page, a framework's bare `{"detail": "Not Found"}`), a 501, or a 200 with an HTML
  page (a stock new-api serves its web console on paths it does not route): the route is missing;
- 400/404 saying the task does not exist, or any 2xx JSON: the route exists and the key is accepted;
- 429, 5xx, no connection or no answer in time: the relay is unavailable (nothing is guessed);
- anything else: unknown, with the status and the relay's message.

The key is never printed: the report says only whether one is set.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import typer

from models.errors import ProviderProtocolError, ProviderUnavailable
from providers.base import PROBE_TASK_ID, Adapter, HttpRequest, HttpResponse
from providers.registry import with_prefix
from providers.wire import error_message, json_or_none

NOTE_MAX = 160  # characters of the relay's text in a verdict: enough to recognise it, no more
POOL = 4  # probes in flight at once

EXIT_HELP = (
    "Exit codes: 0 every probed family's routes exist and the key is accepted; 1 a route is missing or "
    "answered something unexpected; 2 a bad setting or --provider; 3 the relay is unavailable (a 429 or "
    "5xx, no connection, no answer in time); 4 the key is refused. When several apply, the larger code."
)


class Verdict(StrEnum):
    OK = "ok"
    KEY_REFUSED = "key_refused"
    ROUTE_MISSING = "route_missing"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


# What each verdict means, and its exit code; a family's verdict is its routes' worst (highest rank).
MEANING = {
    Verdict.OK: "route exists, key accepted",
    Verdict.UNKNOWN: "unexpected answer",
    Verdict.ROUTE_MISSING: "route missing",
    Verdict.UNAVAILABLE: "relay unavailable",
    Verdict.KEY_REFUSED: "key refused",
}
EXIT_CODE = {Verdict.OK: 0, Verdict.UNKNOWN: 1, Verdict.ROUTE_MISSING: 1, Verdict.UNAVAILABLE: 3, Verdict.KEY_REFUSED: 4}
RANK = {v: i for i, v in enumerate(MEANING)}

_ROUTE_UNKNOWN = re.compile(r"invalid url|no route|route not found|unknown route|page not found|cannot (get|head) /", re.IGNORECASE)
_TASK_ABSENT = re.compile(r"not[ _-]?found|no[ _-]?found|not[ _-]?exist|does not exist|no such task|不存在", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    status: int | None  # the HTTP status; None when there was no answer
    note: str  # for people: the status and the relay's own words, cut and without control characters


def clean(text: str) -> str:
    """The relay's text as one short printable line (it is anyone's text, shown on a terminal)."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 1] + "…"


def _message(data: Any) -> str:
    """The error text of a JSON answer in any of the relays' shapes (`detail` and `title` too)."""
    found = error_message(data)
    if not found and isinstance(data, Mapping):
        found = next((str(data[k]) for k in ("detail", "title", "error") if isinstance(data.get(k), str) and data[k]), "")
    return found


def _is_page(resp: HttpResponse) -> bool:
    """An HTML page rather than an API answer (a web console, a proxy's error page)."""
    ctype = (resp.header("content-type") or "").lower()
    return "html" in ctype or resp.body.lstrip()[:1] == b"<"


def _route_unknown(resp: HttpResponse, data: Any) -> bool:
    if not resp.body.strip() or _is_page(resp) or data is None:
        return True  # empty, HTML or plain text: no relay route answered it
    if isinstance(data, Mapping) and dict(data) == {"detail": "Not Found"}:
        return True  # Starlette's / FastAPI's answer for a path they do not route
    return bool(_ROUTE_UNKNOWN.search(_message(data)))


def classify(resp: HttpResponse) -> Finding:
    """What the answer to a probe (a read of a task that does not exist) says about its route and the key."""
    status = resp.status
    data = json_or_none(resp)
    if data is not None:
        said = clean(_message(data))
    elif _is_page(resp):
        said = "an HTML page, not an API answer"
    else:
        said = clean(resp.body[:300].decode("utf-8", "replace")) or "an empty body"
    note = f"HTTP {status}" + (f": {said}" if said else "")
    if status in (401, 403):
        return Finding(Verdict.KEY_REFUSED, status, note)
    if status == 429 or (status >= 500 and status != 501):
        return Finding(Verdict.UNAVAILABLE, status, note)
    if status in (405, 501) or (status == 404 and _route_unknown(resp, data)):
        return Finding(Verdict.ROUTE_MISSING, status, note)
    if 200 <= status < 300:
        if _is_page(resp):  # a stock new-api serves its web console on the paths it does not route
            return Finding(
                Verdict.ROUTE_MISSING, status, f"HTTP {status}: a web page, not an API answer (a relay's web console answers the paths it does not route)"
            )
        return Finding(Verdict.OK, status, note)
    if status in (400, 404) and isinstance(data, Mapping) and _TASK_ABSENT.search(f"{data.get('code', '')} {_message(data)}"):
        return Finding(Verdict.OK, status, note)
    if 300 <= status < 400:
        where = clean(urlsplit(resp.header("location") or "").netloc)
        return Finding(Verdict.UNKNOWN, status, f"HTTP {status}: a redirect" + (f" to {where}" if where else "") + "; check K4U_BASE_URL")
    return Finding(Verdict.UNKNOWN, status, note)


@dataclass(frozen=True)
class RouteCheck:
    family: str
    method: str
    route: str  # the path as sent (route prefixes applied), the probe's task id shown as {id}
    operations: tuple[str, ...]
    finding: Finding


def route_label(req: HttpRequest, prefixes: Mapping[str, str]) -> str:
    label = with_prefix(req.path, prefixes) + (f"?{urlencode(dict(req.query))}" if req.query else "")
    return label.replace(PROBE_TASK_ID, "{id}")


def _ask(relay: Any, req: HttpRequest) -> Finding:
    try:
        return classify(relay.send(req, idempotent=True, label="doctor"))
    except ProviderUnavailable as exc:
        return Finding(Verdict.UNAVAILABLE, None, clean(str(exc)))
    except ProviderProtocolError as exc:
        return Finding(Verdict.UNKNOWN, None, clean(str(exc)))
    except Exception as exc:  # an answer the client cannot read at all: say what, not a traceback
        return Finding(Verdict.UNKNOWN, None, f"no usable answer ({type(exc).__name__})")


def run_probes(relay: Any, adapters: Mapping[str, Adapter], prefixes: Mapping[str, str], *, limit_s: float, secret: str | None = None) -> list[RouteCheck]:
    """Every probe of the adapters, each distinct request sent once (families share routes), at
    most POOL at a time; one still unanswered after `limit_s` is reported unavailable. `secret`
    (the key) is blotted out of the relay's words, should a relay echo it."""
    planned = [(name, probe) for name, adapter in adapters.items() for probe in adapter.probes()]
    unique = {_key(p.request): p.request for _, p in planned}
    pool = ThreadPoolExecutor(max_workers=max(1, min(POOL, len(unique))), thread_name_prefix="k4u-doctor")
    try:
        futures = {key: pool.submit(_ask, relay, req) for key, req in unique.items()}
        wait(futures.values(), timeout=limit_s)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    late = Finding(Verdict.UNAVAILABLE, None, f"no answer within {limit_s:g} s")
    found = {key: f.result() if f.done() and not f.cancelled() else late for key, f in futures.items()}
    if secret:
        found = {key: replace(f, note=f.note.replace(secret, "[K4U_API_KEY]")) for key, f in found.items()}
    return [RouteCheck(name, p.request.method, route_label(p.request, prefixes), p.operations, found[_key(p.request)]) for name, p in planned]


def _key(req: HttpRequest) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return req.key()


def family_verdicts(names: Iterable[str], checks: Sequence[RouteCheck]) -> dict[str, Verdict | None]:
    """Each family's worst route verdict; None for a family with no probe (not asked)."""
    out: dict[str, Verdict | None] = {}
    for name in names:
        verdicts = [c.finding.verdict for c in checks if c.family == name]
        out[name] = max(verdicts, key=RANK.__getitem__) if verdicts else None
    return out


def exit_code(verdicts: Mapping[str, Verdict | None]) -> int:
    return max((EXIT_CODE[v] for v in verdicts.values() if v is not None), default=0)


def public_url(url: str) -> str:
    """The base URL without any user or password in it (nor a query), for the report."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def report_json(relay_url: str, key_set: bool, verdicts: Mapping[str, Verdict | None], checks: Sequence[RouteCheck]) -> str:
    families = [
        {
            "family": name,
            "verdict": verdict.value if verdict else "not_probed",
            "routes": [
                {
                    "method": c.method,
                    "route": c.route,
                    "operations": list(c.operations),
                    "verdict": c.finding.verdict.value,
                    "status": c.finding.status,
                    "note": c.finding.note,
                }
                for c in checks
                if c.family == name
            ],
        }
        for name, verdict in verdicts.items()
    ]
    code = exit_code(verdicts)
    return json.dumps({"relay": relay_url, "key_set": key_set, "ok": code == 0, "exit_code": code, "families": families}, ensure_ascii=False, indent=2)


def report_table(relay_url: str, key_set: bool, verdicts: Mapping[str, Verdict | None], checks: Sequence[RouteCheck]) -> str:
    rows = [("FAMILY", "ROUTE", "VERDICT")]
    for name, verdict in verdicts.items():
        mine = [c for c in checks if c.family == name]
        rows += [(name, f"{c.method} {c.route}", f"{MEANING[c.finding.verdict]} ({c.finding.note})") for c in mine]
        if verdict is None:
            rows.append((name, "-", "not probed: the family has no free read"))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"relay {relay_url} (key {'set' if key_set else 'NOT set'})", ""]
    lines += [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}" for r in rows]
    bad = {n: v for n, v in verdicts.items() if v not in (None, Verdict.OK)}
    asked = [n for n, v in verdicts.items() if v is not None]
    lines.append("")
    if bad:
        lines.append(f"{len(bad)} of {len(asked)} families have a problem: " + ", ".join(f"{n} ({MEANING[v]})" for n, v in bad.items() if v))
    else:
        lines.append(f"all {len(asked)} probed families: routes exist, key accepted")
    if checks and all(c.finding.status is None and c.finding.verdict is Verdict.UNAVAILABLE for c in checks):
        lines.append(f"no answer at all from {relay_url}: is K4U_BASE_URL right, and is the relay up?")
    return "\n".join(lines)


def doctor(
    provider: Annotated[list[str] | None, typer.Option("--provider", "-p", metavar="NAME", help="Probe only this family (repeatable; default: all)")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=300, help="Seconds one probe may take; the whole run stops at twice this")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Ask the relay one free question per route (a read of a task that does not exist; never a
    POST, nothing is created or charged) and report, per family, whether its routes exist and the
    key is accepted. Uses K4U_BASE_URL, K4U_API_KEY (never printed) and K4U_ROUTE_PREFIXES."""
    from cli.app import err, load_settings
    from providers.registry import ADAPTERS
    from workers.relay import Relay

    settings = load_settings()
    unknown = [p for p in provider or () if p not in ADAPTERS]
    if unknown:
        err.print(f"[red]unknown --provider {', '.join(map(repr, unknown))}[/red]; known: {', '.join(ADAPTERS)}")
        raise typer.Exit(2)
    adapters = {n: a for n, a in ADAPTERS.items() if not provider or n in provider}
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if not key:
        err.print("K4U_API_KEY is not set: the relay will most likely refuse every probe")
    prefixes = settings.route_prefix_map()
    relay = Relay(
        settings.base_url,
        key,
        timeout_s=timeout,
        connect_timeout_s=min(timeout, settings.relay_connect_timeout_s),
        max_body_bytes=settings.relay_max_body_bytes,
        route_prefixes=prefixes,
    )
    try:
        checks = run_probes(relay, adapters, prefixes, limit_s=2 * timeout, secret=key)
    finally:
        relay.close()
    verdicts = family_verdicts(adapters, checks)
    render = report_json if as_json else report_table
    typer.echo(render(public_url(settings.base_url), bool(key), verdicts, checks))
    raise typer.Exit(exit_code(verdicts))


def register(app: typer.Typer) -> None:
    app.command(help=f"{inspect.cleandoc(doctor.__doc__ or '')}\n\n{EXIT_HELP}")(doctor)
