"""The one state table (DESIGN.md "Backup states"): the rows, and prune, verify and the weekly mail reading
the same AWS state the same way. The corners where prune and verify used to disagree are run for real
against moto, with the AWS state set on the wire: an RDS snapshot ``copying``, an RDS snapshot in a state
nobody knows yet, and an ``available`` AMI whose EBS snapshot is still pending, broken or gone."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.common.aws.states import (
    AMI_STATES,
    EBS_SNAPSHOT_STATES,
    RDS_SNAPSHOT_STATES,
    ami_state,
    rds_snapshot_state,
)
from lambdas.common.contracts import State
from lambdas.common.jobs.prune import PlanItem, plan
from lambdas.common.jobs.report import retention_counts
from lambdas.common.jobs.verify import Check, run_checks
from lambdas.common.settings import VerifySettings
from tests.unit.checks.conftest import NOW, Dump, make_ami, make_rds_snapshot

P, U, F = State.PENDING, State.USABLE, State.FAILED

UNKNOWN_FOR_PRUNE = "schoolbackup does not know this state and never deletes what it does not know"
UNKNOWN_FOR_VERIFY = "schoolbackup does not know this state, so it is not counted as good"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("available", U),
        ("creating", P),
        ("copying", P),  # verify used to call this failed
        ("pending", P),
        ("modifying", P),
        ("upgrading", P),
        ("failed", F),
        ("incompatible-restore", F),
        ("incompatible-parameters", F),
        ("incompatible-network", F),
        ("incompatible-option-group", F),
    ],
)
def test_every_known_rds_snapshot_status_is_read_the_same_by_prune_and_verify(
    status: str, state: State
) -> None:
    reading = rds_snapshot_state(status)
    assert (reading.for_prune(), reading.for_verify()) == (state, state)
    assert (reading.detail == "") is (state is U)  # anything not usable says why


def test_the_table_rows_are_the_ones_the_readers_use() -> None:
    assert set(RDS_SNAPSHOT_STATES) >= {"available", "creating", "copying", "failed", "deleting"}
    assert set(AMI_STATES) >= {"available", "pending", "failed", "deregistered", "disabled"}
    assert rds_snapshot_state("deleting").gone and ami_state("deregistered", [], {}).gone


@pytest.mark.parametrize(
    ("image", "snapshots", "state", "words"),
    [
        ("available", {"snap-1": "completed", "snap-2": "completed"}, U, ""),
        ("available", {"snap-1": "completed", "snap-2": "pending"}, P, "has EBS snapshot(s) still pending"),
        ("available", {"snap-1": "completed", "snap-2": "error"}, F, "has failed EBS snapshot(s) snap-2"),
        ("available", {"snap-1": "completed"}, F, "is missing its EBS snapshot(s) snap-2"),
        ("pending", {}, P, "is still pending"),
        ("failed", {}, F, "has state 'failed'"),
        ("disabled", {"snap-1": "completed", "snap-2": "completed"}, F, "has state 'disabled'"),
    ],
)
def test_an_ami_is_usable_only_when_every_snapshot_it_needs_is_completed(
    image: str, snapshots: dict[str, str], state: State, words: str
) -> None:
    reading = ami_state(image, ["snap-1", "snap-2"], snapshots)
    assert (reading.for_prune(), reading.for_verify()) == (state, state)
    assert reading.detail == words


@pytest.mark.parametrize(
    "reading",
    [
        rds_snapshot_state("exporting-to-glacier"),
        ami_state("quantum", ["snap-1"], {"snap-1": "completed"}),
        ami_state("available", ["snap-1"], {"snap-1": "recoverable"}),
    ],
    ids=["rds status", "ami state", "ebs snapshot state"],
)
def test_an_unknown_state_is_pending_for_prune_and_failed_for_verify_and_both_say_so(reading: Any) -> None:
    assert reading.state is None and not reading.known
    assert reading.for_prune() is P  # never delete what you don't know
    assert reading.for_verify() is F  # never call good what you don't know
    assert UNKNOWN_FOR_VERIFY in reading.verify_detail()
    assert reading.detail in reading.verify_detail()


# Against moto: one AWS state, read by prune's plan, verify's checks and the weekly mail's counts.


def _set_rds_status(rds: Any, statuses: dict[str, str]) -> None:
    def rewrite(parsed: dict[str, Any], **_: Any) -> None:
        for snap in parsed.get("DBSnapshots", []):
            snap["Status"] = statuses.get(snap["DBSnapshotIdentifier"], snap["Status"])

    rds.meta.events.register("after-call.rds.DescribeDBSnapshots", rewrite)


def _set_ebs_state(ec2: Any, state: str) -> None:
    def rewrite(parsed: dict[str, Any], **_: Any) -> None:
        for snap in parsed.get("Snapshots", []):
            snap["State"] = state

    ec2.meta.events.register("after-call.ec2.DescribeSnapshots", rewrite)


def _read_both(ec2: Any, rds: Any) -> tuple[dict[str, PlanItem], list[Check]]:
    settings = VerifySettings.from_env()
    _, items = plan(ec2, rds, settings.retention, NOW)
    checks = run_checks(ec2, rds, boto3.client("s3"), settings, NOW).checks
    return {i.name: i for i in items}, checks


def _check(checks: list[Check], kind: str) -> Check:
    [check] = [c for c in checks if c.kind == kind]
    return check


def test_an_rds_snapshot_still_copying_is_pending_for_prune_verify_and_the_mail(
    server: str, database: str, make_dump: Callable[..., Dump]
) -> None:
    make_dump(server, NOW - timedelta(hours=4))
    make_ami(server, NOW - timedelta(days=2))
    good = make_rds_snapshot(database, NOW - timedelta(hours=3))
    copying = make_rds_snapshot(database, NOW - timedelta(hours=1))
    ancient = make_rds_snapshot(database, NOW - timedelta(days=200))
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    _set_rds_status(rds, {copying: "copying", ancient: "copying"})

    items, checks = _read_both(ec2, rds)

    assert (items[copying].backup_state, items[ancient].backup_state) == (P, P)
    assert not items[ancient].delete  # 200 days old, past MAX_AGE_DAYS: never deleted while copying
    rds_check = _check(checks, "rds")
    assert rds_check.ok, rds_check.problems  # was: "the newest backup ... has status 'copying'"
    assert rds_check.newest is not None and rds_check.newest.id == copying
    assert rds_check.newest.state is P
    assert rds_check.newest_good is not None and rds_check.newest_good.id == good
    # The mail counts usable backups from prune's own plan: only the one that is restorable now.
    assert retention_counts(list(items.values()))[(database, "rds")] == (1, 1)


def test_an_rds_snapshot_in_an_unknown_state_is_kept_by_prune_and_a_problem_for_verify(
    server: str, database: str, make_dump: Callable[..., Dump]
) -> None:
    make_dump(server, NOW - timedelta(hours=4))
    make_ami(server, NOW - timedelta(days=2))
    make_rds_snapshot(database, NOW - timedelta(hours=6))
    odd = make_rds_snapshot(database, NOW - timedelta(days=120))
    newest = make_rds_snapshot(database, NOW - timedelta(hours=2))
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    _set_rds_status(rds, {odd: "exporting-to-glacier", newest: "exporting-to-glacier"})

    items, checks = _read_both(ec2, rds)

    assert not items[odd].delete
    assert items[odd].reason == f"has status 'exporting-to-glacier': {UNKNOWN_FOR_PRUNE}"
    [problem] = _check(checks, "rds").problems
    assert f"the newest backup {newest}" in problem
    assert f"has status 'exporting-to-glacier': {UNKNOWN_FOR_VERIFY}" in problem


@pytest.mark.parametrize(
    ("ebs", "state"),
    [("completed", U), ("pending", P), ("error", F)],
)
def test_an_available_ami_counts_as_usable_only_with_completed_snapshots_in_prune_and_verify(
    server: str, database: str, make_dump: Callable[..., Dump], ebs: str, state: State
) -> None:
    make_dump(server, NOW - timedelta(hours=4))
    make_rds_snapshot(database, NOW - timedelta(hours=3))
    make_ami(server, NOW - timedelta(days=2))
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    _set_ebs_state(ec2, ebs)

    items, checks = _read_both(ec2, rds)

    [ami] = [i for i in items.values() if i.kind == "ami" and i.source == server]
    ami_check = _check(checks, "ami")
    assert ami.backup_state is state  # prune used to count any available AMI as usable
    assert ami_check.newest is not None and ami_check.newest.state is state
    assert ami_check.ok is (state is U)
    assert retention_counts(list(items.values())).get((server, "ami"), (0, 0))[0] == (1 if state is U else 0)


def test_an_available_ami_whose_snapshot_is_gone_is_failed_for_both(
    server: str, database: str, make_dump: Callable[..., Dump]
) -> None:
    make_dump(server, NOW - timedelta(hours=4))
    make_rds_snapshot(database, NOW - timedelta(hours=3))
    image = make_ami(server, NOW - timedelta(days=2))
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    [mapping] = [
        m for m in ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"] if "Ebs" in m
    ]

    def drop(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Snapshots"] = [
            s for s in parsed.get("Snapshots", []) if s["SnapshotId"] != mapping["Ebs"]["SnapshotId"]
        ]

    ec2.meta.events.register("after-call.ec2.DescribeSnapshots", drop)

    items, checks = _read_both(ec2, rds)

    [ami] = [i for i in items.values() if i.kind == "ami"]
    assert ami.backup_state is F
    [problem] = _check(checks, "ami").problems[:1]
    assert f"is missing its EBS snapshot(s) {mapping['Ebs']['SnapshotId']}" in problem


def _readme_rows() -> dict[str, list[set[str]]]:
    """The README's state table: per backup, the backticked words of each column (usable, pending,
    failed, going away)."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### Backup states", 1)[1].split("\n| backup |", 1)[1]
    table = [line for line in section.split("\n\n", 1)[0].splitlines() if line.startswith("|")]
    rows: dict[str, list[set[str]]] = {}
    for line in table[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].split(" (")[0]] = [set(re.findall(r"`([^`]+)`", c)) for c in cells[1:]]
    return rows


def _column(state: State | None) -> int:
    return {U: 0, P: 1, F: 2, None: 3}[state]


def _listed(word: str, column: set[str]) -> bool:
    return any(fnmatch.fnmatch(word, pattern) for pattern in column)


def test_the_readme_shows_the_same_table() -> None:
    rows = _readme_rows()
    assert set(rows) == {"RDS snapshot", "AMI", "dump folder"}
    for status, state in RDS_SNAPSHOT_STATES.items():
        assert _listed(status, rows["RDS snapshot"][_column(state)]), status
    for image_state, state in AMI_STATES.items():
        assert _listed(image_state, rows["AMI"][_column(state)]), image_state
    for snapshot_state, state in EBS_SNAPSHOT_STATES.items():
        assert _listed(snapshot_state, rows["AMI"][_column(state)]), snapshot_state
    listed_rds = set().union(*rows["RDS snapshot"])
    assert all(any(fnmatch.fnmatch(s, w) for s in RDS_SNAPSHOT_STATES) for w in listed_rds), listed_rds
