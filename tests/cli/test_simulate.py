"""backupctl simulate: the rehearsal's final inventory is what the retention rules keep (computed here,
independently of lambdas.common.retention), injected failures are caught by the alarm about them, and
the JSON has the fields of DESIGN.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.cli.conftest import Result

REPO = Path(__file__).resolve().parents[2]
ZURICH = ZoneInfo("Europe/Zurich")
POLICY = {"keep_daily": 3, "keep_weekly": 2, "keep_monthly": 1, "max_age_days": 30, "min_keep": 2}
START, DAYS = date(2026, 1, 5), 45  # winter: no clock change inside


def _config(tmp_path: Path) -> Path:
    cdk = json.loads((REPO / "cdk.json").read_text())
    block = cdk["context"]["schoolbackup"]
    block["retention"] = POLICY
    block["bucket"] = {**block["bucket"], "expiry_days": 31}
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps(cdk))
    return path


def _local(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZURICH).astimezone(UTC)


def _kept(times: list[datetime], now: datetime) -> set[datetime]:
    """restic forget: newest per each of the last N days / ISO weeks / months; then max age; min_keep wins."""
    newest_first = sorted(times, reverse=True)
    keep: set[datetime] = set()
    for rule, bucket in (
        ("keep_daily", lambda t: t.date()),
        ("keep_weekly", lambda t: t.isocalendar()[:2]),
        ("keep_monthly", lambda t: (t.year, t.month)),
    ):
        seen: list[object] = []
        for t in newest_first:
            if bucket(t) not in seen:
                seen.append(bucket(t))
                if len(seen) <= POLICY[rule]:
                    keep.add(t)
    keep = {t for t in keep if t >= now - timedelta(days=POLICY["max_age_days"])}
    return keep | set(newest_first[: POLICY["min_keep"]])


def test_the_final_inventory_is_what_the_retention_rules_keep(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    result = cli(
        "--config",
        str(_config(tmp_path)),
        "simulate",
        "--days",
        str(DAYS),
        "--start",
        START.isoformat(),
        "--inject",
        "none",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = result.json()
    [server] = [s for s in data["inventory"] if s.startswith("i-")]
    days = [START + timedelta(days=i) for i in range(DAYS)]
    first = _local(START, 0, 0)  # right after deploying: dump, rds_snapshot, ami_backup once (a minute apart)
    last_prune = _local(days[-1], 5, 0)

    rds_times = [first + timedelta(minutes=1)] + [_local(d, 3, 30) for d in days]
    expected_rds = {f"sb-school-db-{t:%Y%m%d-%H%M}" for t in _kept(rds_times, last_prune)}
    assert set(data["inventory"]["school-db"]["rds"]) == expected_rds

    ami_times = [first + timedelta(minutes=2)] + [_local(d, 3, 0) for d in days if d.isoweekday() == 7]
    expected_ami = {f"sb-{server}-{t:%Y%m%d-%H%M}" for t in _kept(ami_times, last_prune)}
    assert set(data["inventory"][server]["ami"]) == expected_ami

    dump_times = [first] + [_local(d, 1, 30) for d in days]
    limit = _local(days[-1], 1, 30) - timedelta(days=31)  # the bucket lifecycle, applied each day
    expected_dumps = {
        f"dumps/{server}/{t:%Y/%m/%d}/{t:%Y%m%dT%H%MZ}/manifest.json" for t in dump_times if t >= limit
    }
    assert set(data["inventory"][server]["dump"]) == expected_dumps
    assert data["alarms"] == []  # a clean rehearsal raises nothing
    assert [m["day"] for m in data["mails"]] == [d.isoformat() for d in days if d.isoweekday() == 1]
    assert (
        data["config"]["retention"] == POLICY and data["days"] == DAYS and data["start"] == START.isoformat()
    )


def test_the_default_rehearsal_injects_a_missed_dump_and_names_the_alarm_that_caught_it(
    cli: Callable[..., Result],
) -> None:
    result = cli(
        "simulate", "--days", "15", "--start", "2026-03-23", "--json"
    )  # across the spring clock change
    assert result.exit_code == 0, result.stderr
    data = result.json()
    [injected] = data["injected"]
    assert (injected["day"], injected["what"]) == ("2026-04-01", "missed-dump")
    caught = injected["caught_by"]
    assert caught is not None and caught["day"] == "2026-04-01" and "dump" in caught["reason"]
    assert {a["name"] for a in data["alarms"]} <= {
        "SchoolBackup-verify-errors",
        "SchoolBackup-VerificationFailed",
    }
    # The Monday after names it in the weekly mail (the alarms of its week).
    assert [m["day"] for m in data["mails"]] == ["2026-03-23", "2026-03-30", "2026-04-06"]
    assert data["mails"][1]["subject"].endswith(": everything is fine")
    # fine again by Monday, and the subject still says that alarms went off (the body lists them)
    assert data["mails"][2]["subject"].endswith(
        (
            ": everything is fine again (1 alarm(s) this week)",
            ": everything is fine again (2 alarm(s) this week)",
        )
    )
    # No night is lost to the clock change (29.03): 15 nights plus the first run, minus the injected night.
    server = next(s for s in data["inventory"] if s.startswith("i-"))
    assert len(data["inventory"][server]["dump"]) == 15


def test_a_failure_no_alarm_catches_makes_the_rehearsal_fail(cli: Callable[..., Result]) -> None:
    result = cli("simulate", "--days", "10", "--inject", "prune-stopped@2")
    assert result.exit_code == 1
    assert (
        "NOT CAUGHT" in result.stdout
    )  # prune stopping shows only after max_age_days (90): the rehearsal says so


def test_bad_options_are_named(cli: Callable[..., Result]) -> None:
    bad = cli("simulate", "--inject", "meteor@3")
    assert bad.exit_code == 2 and "--inject 'meteor@3'" in bad.stderr
    assert cli("simulate", "--days", "5", "--inject", "missed-dump@9").exit_code == 2
    assert "is not a date" in cli("simulate", "--start", "yesterday").stderr
