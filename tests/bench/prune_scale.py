"""Prune at scale: AWS API calls made, as a ratio to the fewest possible, and wall time.

Run: ``python tests/bench/prune_scale.py [--instances 20] [--weeks 100] [--rds-days 100]``
(it re-runs itself as ``python -m tests.bench.prune_scale`` from the repository root, so that
``lambdas`` imports as it does everywhere else).

In moto: ``instances x weeks`` weekly AMIs (default 2,000), each with its EBS snapshot tagged as
ours, and one RDS manual snapshot a day for ``rds-days`` days (default 100), backdated so that most
must go under the default policy (7/4/3, 90 days, min 3). The prune handler then runs once;
every API call its clients make is counted with a botocore ``before-call`` hook registered on the
default boto3 session (the handler's clients are created from it after the hook is in place).

Fewest possible calls = one call per deletion (deregister an AMI, delete each of its snapshots,
delete an RDS snapshot) + the listing pages needed at the largest page sizes (EC2: 1,000 per page,
RDS: 100) + the one quota read (DescribeAccountAttributes, stubbed: moto lacks it).
Caveat: moto returns every listing in a single page, so prune's listing calls come out *below*
the real-AWS minimum; the per-item ratio (calls other than listings / (deletions + quota)) is
printed too and is the one that shows whether any per-item describe call sneaked in.
Exit status 1 when the ratio is above the target.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TARGET_RATIO = 1.05
NOW = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
LISTINGS = {"DescribeImages", "DescribeSnapshots", "DescribeDBSnapshots"}

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-central-2",
    "AWS_REGION": "eu-central-2",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "schoolbackup",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "KEEP_DAILY": "7",
    "KEEP_WEEKLY": "4",
    "KEEP_MONTHLY": "3",
    "MAX_AGE_DAYS": "90",
    "MIN_KEEP": "3",
}


def build(ec2: Any, rds: Any, instances: int, weeks: int, rds_days: int) -> tuple[int, int]:
    """Create the backups; returns (AMIs, RDS snapshots) created."""
    import time_machine

    from lambdas.common.contracts import JOB_AMI, JOB_RDS, aws_tags, backup_name, backup_tags

    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId="ami-12345678", MinCount=instances, MaxCount=instances)[
            "Instances"
        ]
    ]
    last_sunday = NOW.date() - timedelta(days=NOW.isoweekday() % 7)
    by_instance: dict[str, list[str]] = {i: [] for i in ids}
    for week in range(weeks):
        when = datetime.combine(
            last_sunday - timedelta(weeks=week), datetime.min.time(), tzinfo=UTC
        ) + timedelta(hours=3)
        with time_machine.travel(when, tick=False):
            for instance in ids:
                image = ec2.create_image(
                    InstanceId=instance,
                    Name=backup_name(instance, when),
                    NoReboot=True,
                    TagSpecifications=[
                        {"ResourceType": "image", "Tags": aws_tags(backup_tags(JOB_AMI, instance))}
                    ],
                )
                by_instance[instance].append(image["ImageId"])
    # One listing, then one tagging call per source for all of its snapshots.
    images = {i["ImageId"]: i for i in ec2.describe_images(Owners=["self"])["Images"]}
    for instance, image_ids in by_instance.items():
        snaps = [
            m["Ebs"]["SnapshotId"] for i in image_ids for m in images[i]["BlockDeviceMappings"] if "Ebs" in m
        ]
        ec2.create_tags(Resources=snaps, Tags=aws_tags(backup_tags(JOB_AMI, instance)))

    rds.create_db_instance(
        DBInstanceIdentifier="school-db",
        Engine="mysql",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    for day in range(rds_days):
        when = datetime.combine(
            NOW.date() - timedelta(days=day), datetime.min.time(), tzinfo=UTC
        ) + timedelta(hours=3, minutes=30)
        with time_machine.travel(when, tick=False):
            rds.create_db_snapshot(
                DBInstanceIdentifier="school-db",
                DBSnapshotIdentifier=backup_name("school-db", when),
                Tags=aws_tags(backup_tags(JOB_RDS, "school-db")),
            )
    return instances * weeks, rds_days


def measure(instances: int, weeks: int, rds_days: int) -> int:
    os.environ.update(ENV)
    import boto3
    import time_machine
    from moto import mock_aws

    from lambdas.prune import handler as prune_handler
    from tests.conftest import FakeLambdaContext

    with mock_aws():
        boto3.setup_default_session()  # the handler's boto3.client(...) calls use this session
        session = boto3.DEFAULT_SESSION
        assert session is not None
        ec2, rds = session.client("ec2"), session.client("rds")
        started = time.perf_counter()
        n_images, n_db = build(ec2, rds, instances, weeks, rds_days)
        setup_seconds = time.perf_counter() - started
        listed_snapshots = len(
            ec2.describe_snapshots(
                OwnerIds=["self"], Filters=[{"Name": "tag:ManagedBy", "Values": ["schoolbackup"]}]
            )["Snapshots"]
        )
        all_db = len(rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"])

        calls: Counter[str] = Counter()
        sends: Counter[str] = Counter()

        def count_call(event_name: str, **_: Any) -> None:
            calls[event_name.rsplit(".", maxsplit=1)[-1]] += 1

        def count_send(event_name: str, **_: Any) -> None:
            sends[event_name.rsplit(".", maxsplit=1)[-1]] += 1

        session.events.register("before-call.*.*", count_call)
        session.events.register("before-send.*.*", count_send)
        quota = {"AccountQuotas": [{"AccountQuotaName": "ManualSnapshots", "Used": all_db, "Max": 1000}]}
        real_rds_client = prune_handler.rds_client

        def rds_with_quota() -> Any:
            client = real_rds_client()

            def describe_account_attributes(**_: Any) -> dict[str, Any]:
                calls["DescribeAccountAttributes"] += 1  # stubbed: botocore never sees it
                return quota

            client.describe_account_attributes = describe_account_attributes
            return client

        prune_handler.rds_client = rds_with_quota  # type: ignore[assignment]
        started = time.perf_counter()
        with time_machine.travel(NOW, tick=False), contextlib.redirect_stdout(io.StringIO()):
            result = prune_handler.handler({"scheduled_time": NOW.isoformat()}, FakeLambdaContext())
        prune_seconds = time.perf_counter() - started
        session.events.unregister("before-call.*.*", count_call)
        session.events.unregister("before-send.*.*", count_send)

    counts = result["counts"]
    deletions = counts["deleted"]["rds"] + counts["deleted"]["ami"] + counts["ebs_snapshots_deleted"]
    min_pages = math.ceil(listed_snapshots / 1000) + math.ceil(n_images / 1000) + math.ceil(all_db / 100)
    minimum = deletions + min_pages + 1
    total = sum(calls.values())
    listing_calls = sum(v for k, v in calls.items() if k in LISTINGS)
    per_item = (total - listing_calls) / (deletions + 1)
    ratio = total / minimum

    print(
        f"created: {n_images} AMIs with {listed_snapshots} tagged EBS snapshots, {n_db} RDS snapshots ({setup_seconds:.1f} s)"
    )
    print(
        f"deleted: {counts['deleted']['ami']} AMIs, {counts['ebs_snapshots_deleted']} EBS snapshots, "
        f"{counts['deleted']['rds']} RDS snapshots; kept {counts['kept']}; remaining {result['remaining']}; "
        f"failures {len(result['failures'])}"
    )
    print("API calls by operation: " + ", ".join(f"{k}={v}" for k, v in sorted(calls.items())))
    print(f"HTTP sends (incl. retries): {sum(sends.values())}")
    print(
        f"minimum possible: {deletions} deletions + {min_pages} listing pages at max page size + 1 quota read = {minimum}"
    )
    print(f"prune API calls: {total}  ratio to minimum: {ratio:.3f}  (target <= {TARGET_RATIO})")
    print(f"per-item ratio (non-listing calls / (deletions + quota)): {per_item:.3f}")
    print(
        f"prune wall time: {prune_seconds:.1f} s ({1000 * prune_seconds / max(total, 1):.1f} ms per call under moto)"
    )
    return 0 if ratio <= TARGET_RATIO and per_item <= TARGET_RATIO else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=100)
    parser.add_argument("--rds-days", type=int, default=100)
    args = parser.parse_args()
    if __package__ in (None, ""):
        command = [sys.executable, "-m", "tests.bench.prune_scale", *sys.argv[1:]]
        return subprocess.run(command, cwd=REPO, check=False).returncode
    return measure(args.instances, args.weeks, args.rds_days)


if __name__ == "__main__":
    sys.exit(main())
