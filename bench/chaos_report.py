"""The figures of `bench/chaos.py`, computed from the API's jobs, the simulator's paid-task ledger
and stats, the receiver's deliveries and the stored files, printed as tables with the targets."""

from __future__ import annotations

import argparse
import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_parts import MARKER, Receiver
from stack import ts

FAMILIES = ("kling", "midjourney", "suno")
# Failures that tell the caller what became of a paid task: it may have been charged with its answer
# lost (no lookup), it was charged under an id too long to follow, or it failed at the provider
# (no result to lose). A paid task's job failed with any other code lost a paid result.
SAYS_CHARGED = ("submit_outcome_unknown", "invalid_relay_answer", "provider_failed")
SIM_FAMILY = {"kling": "kling", "mj": "midjourney", "suno": "suno"}
CONTENT_SHA = {"video/mp4": "mp4", "image/png": "png", "audio/mpeg": "mp3", "image/jpeg": "jpg"}


@dataclass
class Figures:
    args: argparse.Namespace
    ids: dict[int, str]  # job number -> job id
    jobs: list[dict[str, Any]]
    wall_s: float
    paid: list[dict[str, Any]]
    stats: dict[str, Any]
    media_sha: dict[str, str]
    receiver: Receiver
    objects: Path
    dev_restarts: int
    kills: int
    kill_misses: int
    redis_restarts: int
    chaos_log: list[str] = field(default_factory=list)
    dev_log: Path | None = None
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # events of the slowest jobs


def _row(*cells: object, widths: tuple[int, ...] = (34, 12, 12, 12)) -> str:
    return "".join(f"{c!s:<{w}}" if i == 0 else f"{c!s:>{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=False)))


def _hist(values: list[int]) -> str:
    counts = Counter(values)
    return ", ".join(f"{k}:{counts[k]}" for k in sorted(counts)) or "-"


def sha_figures(f: Figures) -> dict[str, int]:
    out = Counter({"assets": 0, "reported_mismatch": 0, "stored_mismatch": 0, "stored_missing": 0, "succeeded_without_assets": 0})
    known = set(f.media_sha.values())
    for job in f.jobs:
        if job["status"] != "succeeded":
            continue
        out["succeeded_without_assets"] += not job["assets"]
        for asset in job["assets"]:
            out["assets"] += 1
            want = f.media_sha.get(CONTENT_SHA.get(asset.get("content_type") or "", ""))
            if (asset["sha256"] != want) if want else (asset["sha256"] not in known):
                out["reported_mismatch"] += 1
            files = list((f.objects / job["id"]).glob(f"{asset['index']}.*")) + list((f.objects / job["id"]).glob(f"{asset['index']}"))
            if not files:
                out["stored_missing"] += 1
            elif hashlib.sha256(files[0].read_bytes()).hexdigest() != asset["sha256"]:
                out["stored_mismatch"] += 1
    return dict(out)


def paid_figures(f: Figures) -> tuple[dict[str, list[int]], int, list[str], Counter[str]]:
    """Paid tasks per job of each family, unattributed paid tasks, examples of double charges, and
    failed jobs per error code whose relay task was paid (it ran: its result exists at the relay)."""
    by_index: dict[int, list[dict[str, Any]]] = defaultdict(list)
    unattributed = 0
    for row in f.paid:
        m = MARKER.search(row.get("prompt") or "")
        if m:
            by_index[int(m.group(1))].append(row)
        else:
            unattributed += 1
    jobs_by_id = {j["id"]: j for j in f.jobs}
    per_family: dict[str, list[int]] = {fam: [] for fam in FAMILIES}
    doubles: list[str] = []
    paid_failed: Counter[str] = Counter()
    for index, job_id in sorted(f.ids.items()):
        job = jobs_by_id.get(job_id)
        if job is None:
            continue
        rows = by_index.get(index, [])
        per_family[job["provider"]].append(len(rows))
        if rows and job["status"] == "failed":
            paid_failed[(job.get("error") or {}).get("code") or "?"] += 1
        if len(rows) > 1:
            doubles.append(f"  chaos-{index:06d} {job['provider']} {job['status']}: " + ", ".join(f"{r['task_id']} (answered {r['answered']})" for r in rows))
    return per_family, unattributed, doubles, paid_failed


def notify_figures(f: Figures) -> dict[str, Any]:
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    acked: set[str] = set()
    acked_again = bad_sig = 0
    for d in sorted(f.receiver.deliveries, key=lambda d: d.at):
        ids[(d.job_id, d.event)].add(d.webhook_id)
        bad_sig += not d.signed_ok
        acked_again += d.webhook_id in acked
        if 200 <= d.status < 300:
            acked.add(d.webhook_id)
    terminal = [j for j in f.jobs if j["status"] in ("succeeded", "failed", "cancelled")]
    distinct = {fam: [len(ids[(j["id"], f"job.{j['status']}")]) for j in terminal if j["provider"] == fam] for fam in FAMILIES}
    not_acked = [j["id"] for j in terminal if not ids[(j["id"], f"job.{j['status']}")] & acked]
    expected = {(j["id"], f"job.{j['status']}") for j in terminal}
    other_events = sum(1 for key in ids if key not in expected)
    return {
        "distinct": distinct,
        "not_acked": not_acked,
        "other_events": other_events,
        "deliveries": len(f.receiver.deliveries),
        "bad_signature": bad_sig,
        "redelivered": acked_again,
        "failed_first": Counter(f.receiver.failed_first.values()),
    }


def _log_counts(path: Path | None) -> str:
    if path is None or not path.exists():
        return "no log"
    lines = path.read_text(errors="replace").splitlines()
    count = {w: sum(bool(re.search(rf"[ :]{w}[ /:]", ln)) for ln in lines) for w in ("ERROR", "WARNING")}
    return f"{count['ERROR']} ERROR lines, {count['WARNING']} WARNING lines, {sum(ln.startswith('Traceback') for ln in lines)} tracebacks"


def print_report(f: Figures) -> bool:
    """Print every figure and the targets; True when every target was met."""
    a, n = f.args, len(f.ids)
    by_status = Counter(j["status"] for j in f.jobs)
    terminal = sum(by_status[s] for s in ("succeeded", "failed", "cancelled"))
    print(f"\n=== chaos: {n} jobs (seed {a.seed}), wall time {f.wall_s:.0f} s ===")
    print(
        f"faults: relay 5xx {a.error_5xx_rate:.0%}, 429 {a.rate_limit_rate:.0%} (Retry-After: {a.retry_after}), "
        f"processed-then-502 {a.accept_502_rate:.0%}, 300-character task ids {a.long_task_id_rate:.0%}, "
        f"media cut {a.media_cut_rate:.0%}, callbacks x{1 + a.callback_duplicates} reordered, job deadline {a.job_deadline_s:.0f} s, "
        f"first notification refused for {a.notify_fail_rate:.0%} of jobs"
    )
    print(
        f"fired by the simulator: {f.stats.get('faults_fired')}; relay callbacks sent {f.stats.get('callbacks_sent')} "
        f"(failed {f.stats.get('callbacks_failed')}); media downloads {f.stats.get('media_downloads')}"
    )
    print(f"worker processes SIGKILLed (main and pool): {f.kills} (ticks with none to kill: {f.kill_misses}); Redis restarts: {f.redis_restarts}")
    if f.dev_restarts:
        print(f"k4u dev EXITED during the run and was started again {f.dev_restarts} time(s) (see the log lines below)")
    for line in f.chaos_log:
        print(f"  {line}")

    print(f"\n{_row('jobs', *FAMILIES, widths=(34, 12, 12, 12))}{'all':>10}")
    for status in ("succeeded", "failed", "cancelled", "queued", "submitting", "running", "downloading"):
        cells = [sum(1 for j in f.jobs if j["provider"] == fam and j["status"] == status) for fam in FAMILIES]
        if sum(cells) or status in ("succeeded", "failed"):
            print(f"{_row(status, *cells)}{by_status[status]:>10}")
    lat = sorted((ts(j["finished_at"]) - ts(j["created_at"]), j["id"], j["provider"]) for j in f.jobs if j.get("finished_at"))
    if lat:
        p = lambda q: lat[min(len(lat) - 1, int(q * (len(lat) - 1)))][0]  # noqa: E731
        print(
            f"job latency (created -> finished) p50 {p(0.5):.0f} s, p95 {p(0.95):.0f} s, max {lat[-1][0]:.0f} s; slowest: "
            + ", ".join(f"{jid} ({prov}, {t:.0f} s)" for t, jid, prov in lat[-3:][::-1])
        )
    missing = n - len(f.jobs)
    print(f"terminal: {terminal}/{n} = {terminal / n:.1%}" + (f" ({missing} jobs not found)" if missing else ""))
    codes = Counter((j["provider"], (j.get("error") or {}).get("code")) for j in f.jobs if j["status"] == "failed")
    if codes:
        print("failed by error code:")
        for (prov, code), count in codes.most_common():
            print(f"  {prov:<12}{code!s:<34}{count:>6}")
            example = next(j for j in f.jobs if j["status"] == "failed" and j["provider"] == prov and (j.get("error") or {}).get("code") == code)
            print(f"    e.g. {example['id']}: {(example.get('error') or {}).get('message', '')[:150]}")

    sha = sha_figures(f)
    mismatches = sha["reported_mismatch"] + sha["stored_mismatch"] + sha["stored_missing"] + sha["succeeded_without_assets"]
    print(
        f"\nsha256: {sha['assets']} assets of succeeded jobs; reported sha256 != simulator bytes: {sha['reported_mismatch']}; "
        f"stored file != reported sha256: {sha['stored_mismatch']}; stored file missing: {sha['stored_missing']}; "
        f"succeeded without assets: {sha['succeeded_without_assets']}"
    )

    per_family, unattributed, doubles, paid_failed = paid_figures(f)
    print("\npaid relay tasks per job (histogram, tasks:jobs)")
    for fam in FAMILIES:
        print(f"  {fam:<12}{_hist(per_family[fam])}")
    answered = Counter(str(r["answered"]) for r in f.paid)
    print(f"  paid tasks: {len(f.paid)} (create answered: {dict(answered)}); not attributable to a job: {unattributed}")
    lost = sum(n for code, n in paid_failed.items() if code not in SAYS_CHARGED)
    print(
        f"  failed jobs whose relay task was paid (and ran), by error code: {sum(paid_failed.values())} {dict(paid_failed)}; "
        f"lost paid results (failed with a code that does not say so): {lost}"
    )
    for line in doubles[:10]:
        print(line)

    notes = notify_figures(f)
    print("\ndistinct notifications (webhook-id) per job and event (histogram, ids:jobs)")
    for fam in FAMILIES:
        print(f"  {fam:<12}{_hist(notes['distinct'][fam])}")
    print(
        f"  deliveries {notes['deliveries']}; first delivery refused {dict(notes['failed_first'])}; "
        f"re-deliveries of an acknowledged webhook-id {notes['redelivered']}; bad signatures {notes['bad_signature']}; "
        f"events that do not match the job's final status {notes['other_events']}; terminal jobs never acknowledged "
        f"{len(notes['not_acked'])}" + (f" (e.g. {notes['not_acked'][:3]})" if notes["not_acked"] else "")
    )
    print(f"\nk4u dev log: {_log_counts(f.dev_log)}")
    for job_id, events in f.histories.items():
        start = ts(events[0]["at"]) if events else 0.0
        print(f"history of slow job {job_id}: " + "; ".join(f"+{ts(e['at']) - start:.0f}s {e['from']}->{e['to']} ({(e['reason'] or '')[:80]})" for e in events))

    once = all(v == 1 for fam in FAMILIES for v in notes["distinct"][fam]) and not notes["not_acked"] and not notes["other_events"]
    double_paid = sum(1 for fam in FAMILIES for v in per_family[fam] if v > 1)
    targets = [
        ("100% of jobs terminal", terminal == n, f"{terminal / n:.1%}"),
        ("0 sha256 mismatches", mismatches == 0, str(mismatches)),
        ("0 jobs with more than one paid relay task", double_paid == 0, str(double_paid)),
        ("0 paid results lost (failed without saying it was charged)", lost == 0, str(lost)),
        (
            "every job notified once per event (webhook-id), acknowledged",
            once,
            f"{sum(1 for fam in FAMILIES for v in notes['distinct'][fam] if v != 1)} jobs off",
        ),
    ]
    print(f"\n{'target':<62}{'met':>5}  value")
    for name, met, value in targets:
        print(f"{name:<62}{'yes' if met else 'NO':>5}  {value}")
    print(f"wall time: {f.wall_s:.0f} s (first create -> all terminal or timeout)")
    return all(met for _, met, _ in targets)
