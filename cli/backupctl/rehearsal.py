"""The rehearsal behind ``backupctl simulate``: a school in moto, N days, every job at its scheduled times.

Entirely local (moto in this process, the clock moved with time-machine): one web server and one MySQL
database carrying the selection tag, the backup bucket and the alarm topic. The configuration is the
cdk.json that ``cdk synth`` reads (same validation); every Lambda job runs through its real handler with
the environment the stack gives it (``infra.job_settings``) and the scheduled time of that run; the dump
writes its objects and manifest the way the script does (create-only, manifest last).

What CloudWatch would do with the handlers' EMF lines is done here too: the metrics are stored in moto
(so the weekly mail has its history) and the stack's alarms are evaluated on them: ``<job>-errors`` when
a handler raised, ``<kind>-backup-age`` after two daily checks over the target, ``VerificationFailed``,
``RestoreTestFailed``. The weekly mails are read from the alarm topic (an SQS subscription) or from SES.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import boto3
import time_machine
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws

from cli.backupctl.dumpwriter import tar_gz, write_dump_slot
from infra.config import Config
from infra.cron import parse_cron
from infra.job_settings import job_settings
from lambdas.common import contracts
from lambdas.common.aws.db_snapshots import managed_db_snapshots
from lambdas.common.aws.images import managed_images
from lambdas.common.contracts import SCHEDULED_JOBS, aws_tags
from lambdas.common.jobs.prune import PlanItem, plan
from lambdas.common.manifest import list_sources
from lambdas.common.messages import msg, say
from lambdas.common.publishing import read_emf
from lambdas.common.settings import FunctionSettings

ACCOUNT: Final = "123456789012"  # moto's account
REGION: Final = "eu-central-2"
SERVER_NAME: Final = "web"
DATABASE: Final = "school-db"
RDS_QUOTA: Final = 100
# The jobs the rehearsal runs: every scheduled job but the IAM review, which judges a real account's IAM
# (users, keys, policies, AWS's policy simulator) that the rehearsal's school does not have.
REHEARSED_JOBS: Final = tuple(j for j in SCHEDULED_JOBS if j != "iam_review")
# The failures that can be injected; what each means is cli.simulate.inject.<name> in the catalogue.
INJECTIONS: Final = ("missed-dump", "failed-rds-snapshot", "corrupt-dump", "prune-stopped")
FAKE_AWS: Final = {
    "AWS_ACCESS_KEY_ID": "simulate",
    "AWS_SECRET_ACCESS_KEY": "simulate",
    "AWS_SESSION_TOKEN": "simulate",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


@dataclass(frozen=True)
class Injection:
    day: int  # 1-based day of the rehearsal
    what: str


def evaluated_alarms(config: Config, stack: str = contracts.DEFAULT_STACK_NAME) -> set[str]:
    """The names of the stack's alarms the rehearsal evaluates (each must exist in the template)."""
    prefix = contracts.alarm_prefix(stack)
    kinds = [contracts.KIND_RDS, contracts.KIND_AMI] + ([contracts.KIND_DUMP] if config.dump.enabled else [])
    return (
        {f"{prefix}{job}-errors" for job in REHEARSED_JOBS if job != "dump"}
        | {f"{prefix}{kind}-backup-age" for kind in kinds}
        | {f"{prefix}VerificationFailed", f"{prefix}RestoreTestFailed"}
    )


@dataclass
class Alarms:
    """The stack's alarms, evaluated on what the handlers published."""

    prefix: str
    targets: dict[str, int]
    language: str = "en"  # of the reasons (they reach the weekly mail through the alarm history)
    state: dict[str, bool] = field(default_factory=dict)  # name -> in ALARM
    transitions: list[dict[str, Any]] = field(default_factory=list)
    over_target: dict[str, int] = field(default_factory=dict)  # kind -> consecutive daily checks over target

    def set(self, name: str, alarm: bool, reason: str, when: datetime, day: str) -> None:
        full = f"{self.prefix}{name}"
        if alarm and not self.state.get(full):
            self.transitions.append({"day": day, "name": full, "reason": reason, "when": when})
        self.state[full] = alarm

    def after(
        self, job: str, failed: str | None, published: list[dict[str, Any]], when: datetime, day: str
    ) -> None:
        lang = self.language
        reason = "" if failed is None else say("cli.simulate.reason.errors", lang, job=job, failed=failed)
        self.set(f"{job}-errors", failed is not None, reason, when, day)
        values = {(m["name"], tuple(sorted(m["dimensions"].items()))): float(m["value"]) for m in published}
        if job == "verify":
            for kind, hours in self.targets.items():
                worst = values.get((contracts.WORST_BACKUP_AGE_HOURS, ((contracts.KIND, kind),)))
                over = worst is None or worst > hours
                self.over_target[kind] = self.over_target.get(kind, 0) + 1 if over else 0
                self.set(
                    f"{kind}-backup-age",
                    self.over_target[kind] >= 2,
                    say(
                        "cli.simulate.reason.backup_age",
                        lang,
                        kind=msg(f"cli.simulate.kind.{kind}"),
                        hours=hours,
                    ),
                    when,
                    day,
                )
            failures = values.get((contracts.VERIFY_FAILURES, ()), 0.0)
            found = say("cli.simulate.reason.verify", lang, n=f"{failures:.0f}")
            self.set("VerificationFailed", failures > 0, found, when, day)
        if job == "restore_test":
            passed = values.get((contracts.RESTORE_TEST_PASSED, ()), 0.0)
            failed_test = say("cli.simulate.reason.restore_test", lang)
            self.set("RestoreTestFailed", passed < 1, failed_test, when, day)


@dataclass
class Rehearsal:
    config: Config
    start: date
    days: int
    injections: list[Injection]
    stack: str = contracts.DEFAULT_STACK_NAME
    progress: Callable[[int, list[dict[str, Any]]], None] = lambda day, week: None
    mails: list[dict[str, Any]] = field(default_factory=list)
    week_lines: list[dict[str, Any]] = field(default_factory=list)
    inventory: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    plan: list[PlanItem] = field(default_factory=list)
    runs: int = 0

    @property
    def bucket(self) -> str:
        return contracts.bucket_name(ACCOUNT, REGION)

    def schedule(self) -> list[tuple[datetime, str]]:
        """Every run of every scheduled job in the rehearsal's days, in time order (UTC)."""
        zone = self.config.zone
        begin = datetime.combine(self.start, time(0), zone)
        end = begin + timedelta(days=self.days)
        out: list[tuple[datetime, str]] = []
        for job in REHEARSED_JOBS:
            if job == "dump" and not self.config.dump.enabled:
                continue
            for run in parse_cron(self.config.schedules[job]).next_runs(
                begin - timedelta(minutes=1), self.days + 2, zone
            ):
                if run < end:
                    out.append((run.astimezone(UTC), job))
        order = {job: i for i, job in enumerate(REHEARSED_JOBS)}
        return sorted(out, key=lambda r: (r[0], order[r[1]]))

    def first_runs(self) -> list[tuple[datetime, str]]:
        """Right after deploying, the admin runs each backup job once (README, Deploy), so that the first
        checks find a backup of every kind instead of waiting for Sunday's AMI."""
        begin = datetime.combine(self.start, time(0), self.config.zone).astimezone(UTC)
        jobs = [j for j in ("dump", "rds_snapshot", "ami_backup") if j != "dump" or self.config.dump.enabled]
        return [(begin + timedelta(minutes=i), job) for i, job in enumerate(jobs)]

    def day_of(self, when: datetime) -> int:
        return (when.astimezone(self.config.zone).date() - self.start).days + 1

    def local_day(self, when: datetime) -> str:
        return f"{when.astimezone(self.config.zone):%Y-%m-%d}"

    def injected(self, what: str, when: datetime) -> bool:
        day = self.day_of(when)
        if what == "prune-stopped":
            return any(i.what == what and day >= i.day for i in self.injections)
        return any(i.what == what and i.day == day for i in self.injections)

    def run(self) -> Alarms:
        with (
            _quiet_logs(),
            _environment(FAKE_AWS),
            _clients_made_once(),
            mock_aws(),
            time_machine.travel(datetime.combine(self.start, time(0), UTC), tick=False),
        ):
            boto3.setup_default_session()
            world = World.build(self)
            targets = self.config.targets.by_kind()
            if not self.config.dump.enabled:
                targets.pop(contracts.KIND_DUMP)
            alarms = Alarms(contracts.alarm_prefix(self.stack), targets, self.config.language)
            world.answer_what_moto_lacks(alarms)
            week: list[dict[str, Any]] = []
            last_day = 0
            for when, job in self.first_runs() + self.schedule():
                day = self.day_of(when)
                if day != last_day:
                    world.expire_dumps(when)
                    if last_day and (last_day % 7 == 0):
                        self.week_lines.append(_week_summary(last_day, week))
                        week = []
                    self.progress(day, week)
                    last_day = day
                with time_machine.travel(when, tick=False):
                    week.append(world.run_job(job, when, alarms))
                self.runs += 1
            if week:
                self.week_lines.append(_week_summary(last_day, week))
            end = datetime.combine(self.start + timedelta(days=self.days), time(0), self.config.zone)
            with time_machine.travel(end, tick=False):
                self.inventory = world.inventory()
                _, self.plan = plan(world.ec2, world.rds, self.config.retention, end.astimezone(UTC))
            self.mails = world.mails
            boto3.DEFAULT_SESSION = None
            return alarms


def _week_summary(day: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    made: dict[str, int] = {}
    for r in runs:
        made[r["job"]] = made.get(r["job"], 0) + (1 if r["ok"] else 0)
    return {
        "week": (day - 1) // 7 + 1,
        "ok": sum(1 for r in runs if r["ok"]),
        "failed": [(r["day"], r["job"]) for r in runs if not r["ok"]],  # (local day YYYY-MM-DD, job)
        "runs": made,
    }


@contextlib.contextmanager
def _clients_made_once() -> Iterator[None]:
    """Every handler makes its clients per invocation (as in Lambda); here they are made once and reused,
    which is what makes hundreds of runs fast. Same session, same config, same event hooks."""
    made: dict[tuple[str, int], Any] = {}
    original: Callable[..., Any] = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        key = (service, id(kwargs.get("config")))
        if args or set(kwargs) - {"config"}:
            return original(service, *args, **kwargs)
        if key not in made:
            made[key] = original(service, **kwargs)
        return made[key]

    setattr(boto3, "client", client)  # noqa: B010 - replaced for the rehearsal only, restored below
    try:
        yield
    finally:
        setattr(boto3, "client", original)  # noqa: B010


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The jobs' CloudWatch log lines are not the rehearsal's output (and formatting them costs time)."""
    from lambdas.common.observability import logger  # noqa: PLC0415 - Powertools only when rehearsing

    handler = logger.registered_handler
    level = handler.level
    handler.setLevel(logging.CRITICAL + 1)  # Powertools may reset the logger's level per invocation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Powertools: "No application metrics to publish" (report)
        try:
            yield
        finally:
            handler.setLevel(level)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def night_contents(when: datetime, night: int) -> dict[str, bytes]:
    """A small but real dump of one night: a tar of the web root and a MySQL dump with its last line."""
    sql = (
        b"-- MariaDB dump 10.19\n-- Host: db    Database: school\n"
        + f"INSERT INTO attendance VALUES ({night},'present');\n".encode() * 50  # noqa: S608 - file text
        + f"-- Dump completed on {when:%Y-%m-%d %H:%M:%S}\n".encode()
    )
    return {
        "files.tar.gz": tar_gz(
            {"etc/hostname": b"web\n", "var/www/index.php": f"<?php // night {night}\n".encode()}
        ),
        "db-school.sql.gz": gzip.compress(sql, mtime=0),
    }


def launch_server(ec2: Any, tags: Mapping[str, str], **placement: Any) -> str:
    """A web server in moto: an image with one 8 GiB root volume, one t4g.small instance with ``tags``
    (``placement``: SubnetId, SecurityGroupIds, IamInstanceProfile...). Returns its instance id."""
    image = ec2.register_image(
        Name="al2023",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
        VirtualizationType="hvm",
    )["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t4g.small",
        TagSpecifications=[{"ResourceType": "instance", "Tags": aws_tags(tags)}],
        **placement,
    )["Instances"][0]
    return str(instance["InstanceId"])


def create_database(rds: Any, db_id: str, tags: Mapping[str, str], **network: Any) -> str:
    """A MySQL RDS instance in moto with ``tags`` (``network``: subnet group, security and parameter groups)."""
    rds.create_db_instance(
        DBInstanceIdentifier=db_id,
        DBInstanceClass="db.t4g.micro",
        Engine="mysql",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="simulated-only-1",
        Tags=aws_tags(tags),
        **network,
    )
    return db_id


@dataclass
class World:
    rehearsal: Rehearsal
    server: str
    ec2: Any
    rds: Any
    s3: Any
    cloudwatch: Any
    queue_url: str
    topic_arn: str
    environments: dict[str, dict[str, str]]
    mails: list[dict[str, Any]] = field(default_factory=list)
    nights: int = 0

    @classmethod
    def build(cls, rehearsal: Rehearsal) -> World:
        config = rehearsal.config
        ec2, rds, s3 = boto3.client("ec2"), boto3.client("rds"), boto3.client("s3")
        tag = config.selection.tag
        s3.create_bucket(Bucket=rehearsal.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        server = launch_server(ec2, {tag.key: tag.value, "Name": SERVER_NAME})
        create_database(rds, DATABASE, {tag.key: tag.value, "Name": "school database"})
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name=contracts.alarm_topic_name(rehearsal.stack))["TopicArn"]
        for address in config.notification_emails:
            sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=address)
        queue = sqs.create_queue(QueueName="mails")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        if config.ses_sender:
            boto3.client("sesv2").create_email_identity(EmailIdentity=config.ses_sender)
        settings = job_settings(
            config,
            bucket=rehearsal.bucket,
            topic_arn=topic,
            alarm_prefix=contracts.alarm_prefix(rehearsal.stack),
        )
        environments = {
            job: {**FunctionSettings(name=job).to_env(), **settings.for_job(job).to_env()}
            for job in REHEARSED_JOBS
            if job != "dump"
        }
        return cls(rehearsal, server, ec2, rds, s3, boto3.client("cloudwatch"), queue, topic, environments)

    def answer_what_moto_lacks(self, alarms: Alarms) -> None:
        """moto has no RDS account quota and no alarm history: answer them as AWS would."""
        events = boto3.DEFAULT_SESSION.events if boto3.DEFAULT_SESSION else None
        assert events is not None

        def quota(**_: Any) -> Any:
            used = len(managed_db_snapshots(self.rds))
            body = {
                "AccountQuotas": [{"AccountQuotaName": "ManualSnapshots", "Used": used, "Max": RDS_QUOTA}]
            }
            return AWSResponse("https://rds", 200, HTTPHeaders(), None), body

        def history(**_: Any) -> Any:
            # The report asks for the last 7 days up to its scheduled time, which is the clock now.
            end = datetime.now(UTC)
            start = end - timedelta(days=7)
            items = [
                {
                    "AlarmName": t["name"],
                    "Timestamp": t["when"],
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": "Alarm updated from OK to ALARM",
                    "HistoryData": json.dumps(
                        {"newState": {"stateValue": "ALARM", "stateReason": t["reason"]}}
                    ),
                }
                for t in alarms.transitions
                if start <= t["when"] <= end
            ]
            return AWSResponse("https://monitoring", 200, HTTPHeaders(), None), {"AlarmHistoryItems": items}

        events.register("before-call.rds.DescribeAccountAttributes", quota)
        events.register("before-call.cloudwatch.DescribeAlarmHistory", history)

    def run_job(self, job: str, when: datetime, alarms: Alarms) -> dict[str, Any]:
        rehearsal = self.rehearsal
        day = rehearsal.local_day(when)
        if job == "dump":
            if rehearsal.injected("missed-dump", when):
                return {"day": day, "job": job, "ok": False, "detail": "did not run"}
            self.nights += 1
            written = write_dump_slot(
                self.s3, rehearsal.bucket, self.server, when, night_contents(when, self.nights)
            )
            if rehearsal.injected("corrupt-dump", when):
                db = next(o for o in written.manifest["objects"] if o["kind"] == "db")
                # Cut short after it was written (what a damaged copy looks like): the listed size differs.
                self.s3.put_object(
                    Bucket=rehearsal.bucket, Key=db["key"], Body=b"\0" * (int(db["bytes"]) // 2)
                )
            return {"day": day, "job": job, "ok": True}
        if job == "prune" and rehearsal.injected("prune-stopped", when):
            return {"day": day, "job": job, "ok": False, "detail": "did not run"}
        handler = importlib.import_module(f"lambdas.{job}.handler").handler
        captured = io.StringIO()
        failed: str | None = None
        with _environment(self.environments[job]), contextlib.redirect_stdout(captured):
            try:
                handler({"scheduled_time": f"{when:%Y-%m-%dT%H:%M:%SZ}"}, None)
            except Exception as err:  # a failed job is an outcome of the rehearsal, not of backupctl
                failed = f"{type(err).__name__}: {err}"
        published = read_emf(captured.getvalue())
        self._store_metrics(published, when)
        if job == "rds_snapshot" and rehearsal.injected("failed-rds-snapshot", when):
            self._fail_snapshot(contracts.backup_name(DATABASE, when))
        alarms.after(job, failed, published, when, day)
        if job == "report":
            self._collect_mails(day)
        return {"day": day, "job": job, "ok": failed is None, "detail": failed or ""}

    def expire_dumps(self, now: datetime) -> None:
        """The bucket's lifecycle rule: dumps expire ``bucket.expiry_days`` after they were written."""
        limit = now - timedelta(days=self.rehearsal.config.bucket.expiry_days)
        bucket = self.rehearsal.bucket
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{contracts.DUMP_PREFIX}/"
        )
        old = [{"Key": o["Key"]} for p in pages for o in p.get("Contents", []) if o["LastModified"] < limit]
        for start in range(0, len(old), 1000):
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": old[start : start + 1000]})

    def _store_metrics(self, published: list[dict[str, Any]], when: datetime) -> None:
        """What CloudWatch makes of the EMF lines: the metrics, stamped with the run's time."""
        by_namespace: dict[str, list[Any]] = {}
        for m in published:
            by_namespace.setdefault(m["namespace"], []).append(
                {
                    "MetricName": m["name"],
                    "Dimensions": [{"Name": k, "Value": str(v)} for k, v in m["dimensions"].items()],
                    "Timestamp": when,
                    "Value": float(m["value"]),
                }
            )
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), 1000):
                self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + 1000])

    def _fail_snapshot(self, name: str) -> None:
        from moto.rds.models import rds_backends  # noqa: PLC0415 - moto's model, only for this injection

        snapshot = rds_backends[ACCOUNT][REGION].database_snapshots.get(name)
        if snapshot is not None:
            snapshot.status = "failed"

    def _collect_mails(self, day: str) -> None:
        sqs = boto3.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                body = json.loads(message["Body"])
                self.mails.append({"day": day, "subject": body.get("Subject", ""), "channel": "sns"})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        if self.rehearsal.config.ses_sender:
            from moto.ses.models import ses_backends  # noqa: PLC0415 - moto's outbox, only with SES

            sent = ses_backends[ACCOUNT][REGION].sent_messages
            for message in sent[len([m for m in self.mails if m["channel"] == "ses"]) :]:
                self.mails.append({"day": day, "subject": message.subject, "channel": "ses"})

    def inventory(self) -> dict[str, dict[str, list[str]]]:
        found: dict[str, dict[str, list[str]]] = {}
        for snap in managed_db_snapshots(self.rds):
            source = contracts.tag_dict(snap.get("TagList")).get(contracts.SOURCE_KEY, "?")
            found.setdefault(source, {"rds": [], "ami": [], "dump": []})["rds"].append(
                snap["DBSnapshotIdentifier"]
            )
        for image in managed_images(self.ec2, contracts.JOB_AMI):
            source = contracts.tag_dict(image.get("Tags")).get(contracts.SOURCE_KEY, "?")
            found.setdefault(source, {"rds": [], "ami": [], "dump": []})["ami"].append(
                image.get("Name", image["ImageId"])
            )
        bucket = self.rehearsal.bucket
        for source in list_sources(self.s3, bucket):
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{contracts.DUMP_PREFIX}/{source}/"
            )
            keys = [
                o["Key"] for p in pages for o in p.get("Contents", []) if o["Key"].endswith("/manifest.json")
            ]
            found.setdefault(source, {"rds": [], "ami": [], "dump": []})["dump"] = keys
        for kinds in found.values():
            for names in kinds.values():
                names.sort()
        return found
