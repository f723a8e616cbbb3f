"""A snapshot of ours that no AMI lists yet is kept while its AMI exists (it is still being made or
copied), and deleted as an orphan when the AMI named in its description is gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.common.contracts import JOB_AMI, aws_tags, backup_tags
from lambdas.common.jobs.prune import plan
from lambdas.common.retention import RetentionPolicy
from tests.unit.prune.conftest import NOW

POLICY = RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=3, max_age_days=90, min_keep=3)


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield boto3.client("ec2")


def _image(ec2: Any) -> str:
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name="sb-web-20261122-0300")["ImageId"]
    ec2.create_tags(Resources=[image], Tags=aws_tags(backup_tags(JOB_AMI, instance)))
    return str(image)


def _our_snapshot(ec2: Any, description: str) -> str:
    volume = ec2.create_volume(AvailabilityZone="eu-central-1a", Size=8)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=volume, Description=description)["SnapshotId"]
    ec2.create_tags(Resources=[snap], Tags=aws_tags(backup_tags(JOB_AMI, "i-0123456789abcdef0")))
    return str(snap)


@pytest.mark.parametrize(
    "description",
    [
        "Created by CreateImage(i-0123456789abcdef0) for {ami}",
        "Copied for DestinationAmi {ami} from SourceAmi ami-0fedcba987654321 for SourceSnapshot "
        "snap-0123456789abcdef0. Task created on 1,764,212,400,000.",
    ],
    ids=["made", "copied"],
)
def test_a_snapshot_whose_ami_exists_is_kept_and_one_whose_ami_is_gone_is_an_orphan(
    ec2: Any, description: str
) -> None:
    ami = _image(ec2)
    waiting = _our_snapshot(ec2, description.format(ami=ami))
    orphan = _our_snapshot(ec2, description.format(ami="ami-0000000000000dead"))
    rds = boto3.client("rds")
    _, items = plan(ec2, rds, POLICY, NOW, ("ami",))
    decided = {i.id: i for i in items}
    assert waiting not in decided or not decided[waiting].delete
    assert decided[orphan].delete and decided[orphan].reason.startswith("orphan")
