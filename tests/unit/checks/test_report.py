"""report against moto: a week with one failure, read back from SES (HTML) and SNS (text), rendering,
and a real-browser look at the HTML mail."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from lambdas.common.aws import clients
from lambdas.report import handler as report_handler
from tests.drill_records import drill_record
from tests.unit.checks.conftest import BUCKET, NOW, Dump, make_ami, make_rds_snapshot

SENDER = "backup@school.ch"
RECIPIENTS = "it-admin@school.ch,it-deputy@school.ch"
ALARM = "SchoolBackup-dump-backup-age"


@pytest.fixture
def report_env(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    for address in RECIPIENTS.split(","):  # both confirmed (moto confirms e-mail subscriptions at once)
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=address)
    for name, value in {
        "KEEP_DAILY": "7",
        "KEEP_WEEKLY": "4",
        "KEEP_MONTHLY": "3",
        "MAX_AGE_DAYS": "90",
        "MIN_KEEP": "3",
        "NOTIFICATION_EMAILS": RECIPIENTS,
        "ALARM_TOPIC_ARN": topic,
        "ALARM_PREFIX": "SchoolBackup-",
        "LANGUAGE": "en",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SES_SENDER", raising=False)
    # moto has no DescribeAlarmHistory: answer it with one alarm of ours and one foreign alarm.
    history = {
        "AlarmHistoryItems": [
            {
                "AlarmName": name,
                "Timestamp": NOW - timedelta(days=2),
                "HistoryItemType": "StateUpdate",
                "HistorySummary": "Alarm updated from OK to ALARM",
                "HistoryData": json.dumps(
                    {
                        "newState": {
                            "stateValue": "ALARM",
                            "stateReason": "Threshold Crossed: 2 out of the last 2 datapoints [52.0 (25/11/26 "
                            "05:30:00), 28.0 (24/11/26 05:30:00)] were greater than the threshold (26.0)",
                            "stateReasonData": {
                                "version": "1.0",
                                "statistic": "Maximum",
                                "period": 86400,
                                "recentDatapoints": [28.0, 52.0],
                                "threshold": 26.0,
                            },
                        }
                    }
                ),
            }
            for name in (ALARM, "someone-elses-alarm")
        ]
    }

    def make_cloudwatch() -> Any:
        client = boto3.client("cloudwatch", config=clients.RETRY_CONFIG)
        client.meta.events.register(
            "before-call.cloudwatch.DescribeAlarmHistory",
            lambda **_: (AWSResponse("https://cloudwatch", 200, {}, None), history),
        )
        return client

    monkeypatch.setattr(clients, "cloudwatch_client", make_cloudwatch)
    return topic


@pytest.fixture
def mails(report_env: str) -> Callable[[], list[dict[str, Any]]]:
    """The alarm topic's messages, read through an SQS subscription: call it to receive what arrived."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="mails")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=report_env, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict[str, Any]]:
        found = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in found]

    return received


def _week_with_one_failure(server: str, database: str, make_dump: Callable[..., Dump]) -> None:
    """RDS and AMI fine, the dump is 2 days old (stale), last Monday's restore test passed in 42 s,
    verify passed every day of the last week except today for the dump."""
    make_dump(server, NOW - timedelta(days=2, hours=4))
    for days in range(5):
        make_rds_snapshot(database, NOW - timedelta(days=days, hours=3))
    make_ami(server, NOW - timedelta(days=5))
    record = {
        "started_at": "2026-11-23T06:00:00Z",
        "passed": True,
        "duration_seconds": 42.4,
        "dump": "dumps/x/",
    }
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="reports/restore-tests/20261123T0600Z.json", Body=json.dumps(record)
    )
    cloudwatch = boto3.client("cloudwatch")
    for days in range(7):
        for source, kind in ((server, "dump"), (server, "ami"), (database, "rds")):
            passed = 0.0 if (kind == "dump" and days == 0) else 1.0
            cloudwatch.put_metric_data(
                Namespace="schoolbackup",
                MetricData=[
                    {
                        "MetricName": "VerificationPassed",
                        "Dimensions": [{"Name": "Source", "Value": source}, {"Name": "Kind", "Value": kind}],
                        "Timestamp": NOW - timedelta(days=days, minutes=5),
                        "Value": passed,
                    }
                ],
            )


def test_weekly_mail_by_ses_names_the_one_failure_and_everything_else(
    *,
    report_env: str,
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    _week_with_one_failure(server, database, make_dump)
    monkeypatch.setenv("SES_SENDER", SENDER)
    boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
    result = report_handler.handler({}, lambda_context)
    assert result["channel"] == "ses"
    assert result["ok"] is False
    assert len(result["problems"]) == 1
    [message] = ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-2"].sent_messages
    assert message.source == SENDER
    assert message.destinations["ToAddresses"] == RECIPIENTS.split(",")
    # One problem: the stale dump, with the alarm it raised under it (not a second problem).
    assert message.subject == "schoolbackup weekly report 27.11.2026: 1 problem needs you"
    body = message.body
    assert body.startswith("<!DOCTYPE html>")
    assert "One problem needs your attention." in body
    assert f"Files and database dump: {server}" in body
    assert "The newest good backup" in body and "is 52 hours old" in body
    assert "backupctl run dump" in body
    assert "#logsV2:log-groups/log-group/$252Fschoolbackup$252FSchoolBackup$252Fdump" in body
    assert "target: at most 26 hours" in body
    assert (
        "newest 27.11.2026 04:30, 3 hours old" in body
    )  # in Europe/Zurich, as the mail says  # the RDS snapshot
    assert "kept: 5 (the retention policy keeps 5)" in body
    assert "23.11.2026 07:00: passed in 42 s" in body
    assert "All times in Europe/Zurich." in body
    assert ALARM in body
    assert "Threshold Crossed" not in body  # the reason in plain words instead:
    assert "was 52 hours old (target: at most 26 hours)" in body
    assert "someone-elses-alarm" not in body
    assert "#b23c00" in body  # today's failed check is a vermillion cell in the strip


def test_without_ses_sender_the_text_report_goes_to_the_sns_topic(
    mails: Callable[[], list[dict[str, Any]]],
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
) -> None:
    _week_with_one_failure(server, database, make_dump)
    assert report_handler.handler({}, lambda_context)["channel"] == "sns"
    [note] = mails()
    assert note["Subject"] == "schoolbackup weekly report 27.11.2026: 1 problem needs you"
    text = note["Message"]
    assert "<" not in text
    assert f"Server {server}" in text
    assert f"Database {database}" in text
    assert "  Files and database dump: PROBLEM" in text.splitlines()
    assert "    29.10. " + "·" * 23 + "■" * 6 + "□ 27.11." in text.splitlines()
    assert (
        f"{ALARM}: the newest good files and database dump of a server or database was 52 hours old" in text
    )


def test_a_dump_with_non_transactional_tables_is_a_note_in_the_weekly_mail_not_a_problem(
    mails: Callable[[], list[dict[str, Any]]],
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
) -> None:
    _week_with_one_failure(server, database, make_dump)
    make_dump(server, NOW - timedelta(hours=4), inconsistent=("school.sessions",))  # fresh: no problem left
    result = report_handler.handler({}, lambda_context)
    assert result["problems"] == []
    [mail] = mails()
    text = mail["Message"]
    notes = text.split("\nNotes:\n", 1)[1]
    assert f" - dump of {server}: the newest good backup " in notes
    assert "1 table(s) that are not transactional (school.sessions)" in notes


def test_ses_refusal_falls_back_to_sns_with_a_note(
    *,
    report_env: str,
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _week_with_one_failure(server, database, make_dump)
    monkeypatch.setenv("SES_SENDER", "unverified@school.ch")  # no identity created: moto rejects it
    assert report_handler.handler({}, lambda_context)["channel"] == "sns"


def test_a_repeated_run_of_one_scheduled_time_sends_no_second_mail(
    mails: Callable[[], list[dict[str, Any]]],
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
) -> None:
    _week_with_one_failure(server, database, make_dump)
    event = {"scheduled_time": "2026-11-23T06:30:00Z"}  # the Monday run, retried on Friday
    first = report_handler.handler(event, lambda_context)
    second = report_handler.handler(event, lambda_context)
    assert (first["repeated"], second["repeated"]) == (False, True)
    assert second["message_id"] == first["message_id"]
    [mail] = mails()
    assert mail["Subject"].startswith("schoolbackup weekly report 23.11.2026")
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="reports/weekly/")["Contents"]
    assert [o["Key"] for o in listed] == ["reports/weekly/20261123T0630Z.json"]
    # Another scheduled time is another mail.
    assert (
        report_handler.handler({"scheduled_time": "2026-11-30T06:30:00Z"}, lambda_context)["repeated"]
        is False
    )


def test_an_unconfirmed_alarm_address_is_a_problem_in_the_weekly_mail(
    mails: Callable[[], list[dict[str, Any]]],
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An address that never clicked the confirmation link gets no alarm: the mail (which the other
    address and SES still deliver) says so, as a problem."""
    _week_with_one_failure(server, database, make_dump)
    make_dump(server, NOW - timedelta(hours=4))  # fresh: the dump problem is gone
    original = clients.sns_client

    def deputy_pending() -> Any:
        client = original()

        def rewrite(parsed: dict[str, Any], **_: Any) -> None:
            for sub in parsed.get("Subscriptions", []):
                if sub.get("Endpoint") == "it-deputy@school.ch":
                    sub["SubscriptionArn"] = "PendingConfirmation"

        client.meta.events.register("after-call.sns.ListSubscriptionsByTopic", rewrite)
        return client

    monkeypatch.setattr(clients, "sns_client", deputy_pending)
    result = report_handler.handler({}, lambda_context)
    assert [p for p in result["problems"] if "@" in p] == [
        "Alarm mail to it-deputy@school.ch: it-deputy@school.ch gets no alarm: its subscription to the alarm "
        "topic is not confirmed."
    ]
    [mail] = mails()
    assert "it-deputy@school.ch gets no alarm" in mail["Message"]
    assert 'Click the link in the mail "AWS Notification - Subscription Confirmation"' in mail["Message"]


def test_servers_and_databases_are_named_by_their_name_tag_with_the_id_beside(
    mails: Callable[[], list[dict[str, Any]]],
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
) -> None:
    _week_with_one_failure(server, database, make_dump)
    boto3.client("ec2").create_tags(Resources=[server], Tags=[{"Key": "Name", "Value": "web"}])
    arn = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=database)["DBInstances"][0][
        "DBInstanceArn"
    ]
    boto3.client("rds").add_tags_to_resource(
        ResourceName=arn, Tags=[{"Key": "Name", "Value": "school database"}]
    )
    report_handler.handler({}, lambda_context)
    [mail] = mails()
    assert f"Server web ({server})" in mail["Message"]
    assert f"Database school database ({database})" in mail["Message"]


@pytest.fixture
def drill_week(
    mails: Callable[[], list[dict[str, Any]]],
    server: str,
    database: str,
    make_dump: Callable[..., Dump],
    lambda_context: Any,
) -> Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]:
    """A week with one failure (the stale dump) and these drill records (key -> content): the report's
    result and the one mail it sent."""

    def run(drills: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        _week_with_one_failure(server, database, make_dump)
        for key, record in drills.items():
            boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record))
        result: dict[str, Any] = report_handler.handler({}, lambda_context)
        [note] = mails()
        return result, note

    return run


def test_the_weekly_mail_shows_the_newest_drill_and_a_failed_one_is_a_problem(
    drill_week: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRILL_ENABLED", "true")
    result, note = drill_week(
        {
            "reports/drills/20260704T0600Z.json": drill_record("2026-07-04T06:00:00Z"),
            "reports/drills/20261107T0700Z.json": drill_record(
                "2026-11-07T07:00:00Z", failed_phase="db-check"
            ),
            # a record named after a later time (another run's clock): not this week's mail
            "reports/drills/20270102T0700Z.json": drill_record("2027-01-02T07:00:00Z"),
        }
    )
    assert len(result["problems"]) == 2  # the stale dump and the failed drill
    assert note["Subject"] == "schoolbackup weekly report 27.11.2026: 2 problems need you"
    text = note["Message"]
    assert "Restore drill: 07.11.2026 08:00: FAILED, the school was not restored and checked" in text
    assert "The restore drill of 07.11.2026 08:00 failed" in text
    assert "Db-check: school answered '0' (expected a value other than 0)" in text
    assert "backupctl drill status" in text


def test_a_passed_drill_in_the_weekly_mail_is_no_problem(
    drill_week: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    record = drill_record("2026-11-07T07:00:00Z", rto_minutes=81.2)
    result, note = drill_week({"reports/drills/20261107T0700Z.json": record})
    assert len(result["problems"]) == 1  # the stale dump only
    assert (
        "Restore drill: 07.11.2026 08:00: passed, the school was working again after 81.2 minutes "
        "(target: at most 240)"
    ) in note["Message"]


def test_a_drill_record_the_report_cannot_read_is_a_failed_drill_that_names_it(
    drill_week: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    key = "reports/drills/20261107T0700Z.json"
    result, note = drill_week({key: {"result": "passed"}})
    assert len(result["problems"]) == 2  # the stale dump, and the drill nobody can vouch for
    text = note["Message"]
    assert "Restore drill: 07.11.2026 08:00: FAILED, the school was not restored and checked" in text
    assert (
        f"Why it stopped: {key} is not a drill record this report can read (KeyError('started_at'))" in text
    )
