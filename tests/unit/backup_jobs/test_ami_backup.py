from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from lambdas.ami_backup.handler import handler
from lambdas.common.jobs.ami_backup import SnapshotWait, create_images
from lambdas.common.jobs.backup_result import BackupJobFailed
from lambdas.common.settings import AmiBackupSettings, SettingsError
from tests.unit.backup_jobs.conftest import SCHEDULED, STAMP, AwsFaults, emf_metrics

EVENT = {"scheduled_time": SCHEDULED}
SELECTED = {"Backup": "true", "Name": "web"}
EXPECTED_TAGS = {"ManagedBy": "schoolbackup", "BackupJob": "ami-weekly"}


def images() -> dict[str, dict[str, Any]]:
    ec2 = boto3.client("ec2")
    found = ec2.describe_images(Owners=["self"])["Images"]
    return {i["Name"]: i for i in found if i["Name"].startswith("sb-")}


def tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def snapshot_tags(image: dict[str, Any]) -> dict[str, dict[str, str]]:
    ec2 = boto3.client("ec2")
    ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    return {
        s["SnapshotId"]: tags(s.get("Tags")) for s in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]
    }


def test_images_only_selected_instances_and_tags_image_and_every_snapshot(
    make_instance: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    web = make_instance(SELECTED)
    make_instance({"Backup": "false"})
    make_instance()

    result = handler(EVENT, lambda_context)

    name = f"sb-{web}-{STAMP}"
    assert result == {"job": "ami-weekly", "created": [name], "already_existed": [], "failed": {}}
    made = images()
    assert list(made) == [name]
    expected = {**EXPECTED_TAGS, "BackupSource": web}
    assert tags(made[name]["Tags"]) == expected
    by_snapshot = snapshot_tags(made[name])
    assert by_snapshot  # moto gives an image one EBS mapping (it ignores the test AMI's second volume)
    assert all(t == expected for t in by_snapshot.values())
    # moto refuses snapshot TagSpecifications (NotImplementedError): asked once with them, once without.
    first, sent = aws_faults.params("ec2.CreateImage")
    assert first["TagSpecification.2.ResourceType"] == ["snapshot"]
    assert "TagSpecification.2.ResourceType" not in sent
    assert sent["NoReboot"] == ["true"]
    assert sent["InstanceId"] == [web]


def test_create_image_asks_ec2_to_tag_the_snapshots_too(make_instance: Callable[..., str]) -> None:
    """Real EC2 tags snapshots atomically from TagSpecifications; moto cannot, so capture the request."""
    web = make_instance(SELECTED)
    ec2 = boto3.client("ec2")
    requested: list[dict[str, Any]] = []
    ec2.meta.events.register(
        "provide-client-params.ec2.CreateImage", lambda params, **kwargs: requested.append(dict(params))
    )
    settings = AmiBackupSettings.from_env()

    create_images(ec2, settings, datetime(2026, 11, 27, 2, 30, tzinfo=UTC))

    first = requested[0]
    by_type = {spec["ResourceType"]: tags(spec["Tags"]) for spec in first["TagSpecifications"]}
    assert by_type == {
        "image": {**EXPECTED_TAGS, "BackupSource": web},
        "snapshot": {**EXPECTED_TAGS, "BackupSource": web},
    }


def test_listed_ids_are_imaged_without_the_tag_and_no_reboot_can_be_switched_off(
    make_instance: Callable[..., str],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    aws_faults: AwsFaults,
) -> None:
    listed = make_instance()
    make_instance()
    monkeypatch.setenv("EC2_INSTANCE_IDS", listed)
    monkeypatch.setenv("NO_REBOOT", "false")

    handler(EVENT, lambda_context)

    assert list(images()) == [f"sb-{listed}-{STAMP}"]
    assert {p["NoReboot"][0] for p in aws_faults.params("ec2.CreateImage")} == {"false"}


def test_second_invocation_for_same_time_reports_existing_and_creates_nothing(
    make_instance: Callable[..., str], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    web = make_instance(SELECTED)
    handler(EVENT, lambda_context)
    capsys.readouterr()

    second = handler(EVENT, lambda_context)

    assert second["created"] == []
    assert second["already_existed"] == [f"sb-{web}-{STAMP}"]
    assert len(images()) == 1
    published = {m["name"]: m for m in emf_metrics(capsys.readouterr().out)}
    assert published["BackupsAlreadyExisted"]["value"] == 1
    assert published["BackupsCreated"]["value"] == 0
    assert published["BackupsCreated"]["dimensions"]["Job"] == "ami-weekly"


def test_stopped_instance_is_imaged_terminated_one_fails_after_the_others(
    make_instance: Callable[..., str], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    running = make_instance(SELECTED)
    stopped = make_instance(SELECTED, state="stopped")
    gone = make_instance(SELECTED, state="terminated")

    with pytest.raises(
        BackupJobFailed, match=rf"ami-weekly: 1 of 3 sources failed: {gone}: instance is 'terminated'"
    ):
        handler(EVENT, lambda_context)

    assert sorted(images()) == sorted(f"sb-{i}-{STAMP}" for i in (running, stopped))
    published = {m["name"]: m["value"] for m in emf_metrics(capsys.readouterr().out)}
    assert (published["BackupsCreated"], published["BackupsFailed"]) == (2, 1)


def test_listed_instance_that_does_not_exist_is_a_failure(
    make_instance: Callable[..., str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = make_instance(SELECTED)
    monkeypatch.setenv("EC2_INSTANCE_IDS", "i-0123456789abcdef0")
    with pytest.raises(
        BackupJobFailed, match="i-0123456789abcdef0: listed in EC2_INSTANCE_IDS but no such instance"
    ):
        handler(EVENT, lambda_context)
    assert list(images()) == [f"sb-{web}-{STAMP}"]


def test_throttling_on_the_first_calls_still_images_every_instance(
    make_instance: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    ids = [make_instance(SELECTED) for _ in range(3)]
    aws_faults.throttle = {"*": 3}  # every EC2 operation answers RequestLimitExceeded three times first

    result = handler(EVENT, lambda_context)

    assert sorted(result["created"]) == sorted(f"sb-{i}-{STAMP}" for i in ids)
    assert len(images()) == 3
    for image in images().values():
        assert snapshot_tags(image)
        assert all(t["ManagedBy"] == "schoolbackup" for t in snapshot_tags(image).values())
    assert aws_faults.throttled["ec2.CreateImage"] == 3
    assert aws_faults.throttled["ec2.CreateTags"] == 3


def test_snapshots_unknown_while_pending_are_tagged_by_the_next_run(
    make_instance: Callable[..., str],
) -> None:
    web = make_instance(SELECTED)
    ec2 = boto3.client("ec2")
    settings = AmiBackupSettings.from_env()

    def pending(parsed: dict[str, Any], **kwargs: Any) -> None:
        for image in parsed.get("Images", []):
            image["State"] = "pending"
            for mapping in image.get("BlockDeviceMappings", []):
                mapping.get("Ebs", {}).pop("SnapshotId", None)

    ec2.meta.events.register("after-call.ec2.DescribeImages", pending)
    waits: list[float] = []
    first = create_images(
        ec2,
        settings,
        datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
        wait=SnapshotWait(attempts=3, sleep=waits.append),
    )
    assert first.created == [f"sb-{web}-20261122-0200"]
    assert not first.failed
    assert waits == [5.0, 5.0]  # waited between the attempts, then left the tagging to the next run
    [image] = images().values()
    assert snapshot_tags(image)
    assert all(t == {} for t in snapshot_tags(image).values())

    ec2.meta.events.unregister("after-call.ec2.DescribeImages", pending)
    create_images(ec2, settings, datetime(2026, 11, 29, 2, 0, tzinfo=UTC))

    old = images()[f"sb-{web}-20261122-0200"]
    assert snapshot_tags(old)
    assert all(t == {**EXPECTED_TAGS, "BackupSource": web} for t in snapshot_tags(old).values())


def test_settings_name_the_missing_selection_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELECTION_TAG", raising=False)
    with pytest.raises(SettingsError, match="SELECTION_TAG"):
        AmiBackupSettings.from_env()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SELECTION_TAG", "Backup:true"),
        ("EC2_INSTANCE_IDS", "i-0123456789abcdef0,web-server"),
        ("NO_REBOOT", "maybe"),
    ],
)
def test_settings_name_the_malformed_variable(name: str, value: str) -> None:
    environ = {"SELECTION_TAG": "Backup=true", name: value}
    with pytest.raises(SettingsError, match=name):
        AmiBackupSettings.from_env(environ)


def test_settings_defaults_to_no_reboot() -> None:
    settings = AmiBackupSettings.from_env({"SELECTION_TAG": "Backup=true"})
    assert settings.no_reboot is True
    assert settings.instance_ids == ()


def test_handler_fails_before_any_aws_call_when_settings_are_malformed(
    make_instance: Callable[..., str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_instance(SELECTED)
    monkeypatch.setenv("NO_REBOOT", "sometimes")
    with pytest.raises(SettingsError, match="NO_REBOOT"):
        handler(EVENT, lambda_context)
    assert images() == {}


def test_same_minute_with_other_seconds_creates_nothing_twice(
    make_instance: Callable[..., str], lambda_context: Any
) -> None:
    web = make_instance(SELECTED)
    handler({"scheduled_time": "2026-11-27T02:30:00Z"}, lambda_context)
    again = handler({"scheduled_time": "2026-11-27T02:30:41Z"}, lambda_context)
    assert again["created"] == []
    assert again["already_existed"] == [f"sb-{web}-{STAMP}"]
    assert list(images()) == [f"sb-{web}-{STAMP}"]


def test_a_concurrent_run_that_made_the_ami_first_is_not_a_failure(
    make_instance: Callable[..., str], lambda_context: Any, aws_faults: AwsFaults
) -> None:
    """Two invocations for the same time race: both find no AMI, the second CreateImage is refused."""
    web = make_instance(SELECTED)
    aws_faults.bodies["ec2.CreateImage"] = (
        400,
        "<Response><Errors><Error><Code>InvalidAMIName.Duplicate</Code><Message>AMI name "
        f"sb-{web}-{STAMP} is already in use by AMI ami-0123456789abcdef0</Message></Error></Errors>"
        "<RequestID>dup</RequestID></Response>",
    )

    result = handler(EVENT, lambda_context)

    assert result == {
        "job": "ami-weekly",
        "created": [],
        "already_existed": [f"sb-{web}-{STAMP}"],
        "failed": {},
    }
