"""Write-once dump slots: every object is created with If-None-Match, nothing stored is ever
replaced, a failed run leaves no manifest that lies, and a later attempt completes the slot."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import (
    REPO,
    RecordingProxy,
    Runner,
    SeededDb,
    assert_failed_cleanly,
    db_settings,
    dump_prefix,
    last_line,
    list_keys,
    refuse,
)

pytestmark = pytest.mark.integration


def versions(s3: Any, bucket: str, prefix: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", []):
        found.setdefault(v["Key"], []).append(v["VersionId"])
    return found


def test_the_s3_stand_in_refuses_to_replace_an_object(s3: Any, bucket: str) -> None:
    """What the tests below rely on: moto answers 412 to a conditional create of an existing key."""
    s3.put_object(Bucket=bucket, Key="dumps/probe/once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=bucket, Key="dumps/probe/once", Body=b"2", IfNoneMatch="*")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_every_object_is_created_with_if_none_match_and_every_body_with_content_md5(
    runner: Runner, mysql_big_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env(**db_settings(mysql_big_db))
    sent_before = len(proxy.requests)
    result = runner.run(env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    s3_sent = [r for r in proxy.requests[sent_before:] if r.service == "s3"]
    creating = [
        r
        for r in s3_sent
        if (r.method == "PUT" and "partNumber=" not in r.target)
        or (r.method == "POST" and "uploadId=" in r.target)
    ]
    assert any("uploadId=" in r.target for r in creating), "the big database went up as a multipart upload"
    assert creating and all(r.headers.get("if-none-match") == "*" for r in creating), [
        (r.method, r.target) for r in creating if r.headers.get("if-none-match") != "*"
    ]
    # a bucket with Object Lock default retention refuses a body without Content-MD5 (or a checksum)
    bodies = [r for r in s3_sent if r.method == "PUT"]
    assert bodies and all(
        re.fullmatch(r"[A-Za-z0-9+/]{22}==", r.headers.get("content-md5", "")) for r in bodies
    )
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    for obj in manifest["objects"]:
        data = s3.get_object(Bucket=bucket, Key=obj["key"])["Body"].read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (obj["bytes"], obj["sha256"])
    assert all(len(ids) == 1 for ids in versions(s3, bucket, prefix).values())
    retention = s3.head_object(Bucket=bucket, Key=prefix + "manifest.json")
    assert retention["ObjectLockMode"] == "GOVERNANCE", "the stand-in locks objects as the real bucket does"


def test_an_interrupted_slot_is_completed_by_a_later_attempt_and_nothing_is_replaced(
    runner: Runner, mysql_db: SeededDb, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env(**db_settings(mysql_db))
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    proxy.faults.append(
        refuse("PUT", "manifest.json", 500, "InternalError", "We encountered an internal error")
    )
    try:
        line = assert_failed_cleanly(runner.run(env), runner, s3, bucket, env=env, step="manifest")
    finally:
        proxy.faults.clear()
    assert "InternalError" in line
    first = versions(s3, bucket, prefix)
    assert sorted(first) == [
        prefix + "attempt-1.json",
        prefix + f"db-{mysql_db.name}.sql.gz",
        prefix + "files.tar.gz",
    ], "the failed attempt's objects stay, and there is no manifest"

    second = runner.run(env)

    assert second.returncode == 0, second.stdout + second.stderr
    assert last_line(second.stdout) == f"schoolbackup-dump: OK s3://{bucket}/{prefix}manifest.json"
    assert "attempt 2 of this slot" in second.stdout
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert [o["key"] for o in manifest["objects"]] == [
        prefix + "files.attempt-2.tar.gz",
        prefix + f"db-{mysql_db.name}.attempt-2.sql.gz",
    ]
    for obj in manifest["objects"]:  # the manifest says exactly what is stored under its keys
        data = s3.get_object(Bucket=bucket, Key=obj["key"])["Body"].read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (obj["bytes"], obj["sha256"])
    after = versions(s3, bucket, prefix)
    assert {k: v for k, v in after.items() if k in first} == first, "no stored object got a new version"
    assert all(len(ids) == 1 for ids in after.values())
    from lambdas.common.manifest import parse_manifest

    assert parse_manifest(json.dumps(manifest), folder=prefix).ok


def test_a_failed_rerun_of_a_finished_slot_cannot_replace_the_manifest(
    runner: Runner, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    env = runner.env()
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    assert runner.run(env).returncode == 0
    stored = versions(s3, bucket, prefix)
    # a run that cannot see the manifest (say, the check fails) and tries to write the slot again
    empty = '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><KeyCount>0</KeyCount></ListBucketResult>'
    proxy.faults.append(lambda r: (200, empty) if r.method == "GET" and "list-type=2" in r.target else None)
    try:
        result = runner.run(env)
    finally:
        proxy.faults.clear()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "another run completed this slot first" in result.stdout
    after = versions(s3, bucket, prefix)
    assert {k: v for k, v in after.items() if k in stored} == stored, "nothing stored was replaced"
    assert prefix + "attempt-2.json" in after


def test_the_dump_runs_from_its_ssm_document_as_from_the_file(
    runner: Runner, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The document embeds the script and its S3 client; what SSM runs must work like the checkout."""
    from infra.dump import VARIABLES, helper_lines, run_command, script_lines

    text = "\n".join(run_command(script_lines(), helper_lines(), {"SB_TIME_LIMIT_SECONDS": "600"})) + "\n"
    env = runner.env()
    for param, var in VARIABLES.items():  # SSM substitutes {{ Param }} textually
        text = text.replace(f"{{{{ {param} }}}}", env.get(var, ""))
    script = tmp_path / "_script.sh"  # elsewhere than lambdas/dump: the helpers must come from the document
    script.write_text(text)
    result = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = dump_prefix(env["SB_SCHEDULED_TIME"])
    assert last_line(result.stdout) == f"schoolbackup-dump: OK s3://{bucket}/{prefix}manifest.json"
    assert prefix + "files.tar.gz" in list_keys(s3, bucket, prefix)
