"""`make demo` and `make deploy` stop on a broken cdk.json, example values, credentials that do not work,
or a DB secret in another account or region: each in one sentence."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from infra.preflight import Identity, PreflightError, problems, read_context, who_am_i
from tests.unit.test_config import EXAMPLE, REPO, with_changes

HERE = Identity("210987654321", "eu-central-2", "arn:aws:iam::210987654321:user/admin")


def real_config(**changes: Any) -> dict[str, Any]:
    real = {
        "notification_emails": ["it@school-x.ch", "deputy@school-x.ch"],
        "dump__db_host": "school.c9akciq32.eu-central-2.rds.amazonaws.com",
        "dump__db_secret_arn": "arn:aws:secretsmanager:eu-central-2:210987654321:secret:schoolbackup/dump-reader-Xy12Ab",
    }
    return with_changes(**{**real, **changes})


def test_example_addresses_and_placeholders_are_refused() -> None:
    found = problems(EXAMPLE, HERE)
    assert len(found) == 2
    assert "it-admin@example.org" in found[0]
    assert "before deploying" in found[0]
    assert "dump.db_secret_arn" in found[1]
    assert "dump.db_host" in found[1]


def test_missing_credentials_is_one_clear_sentence() -> None:
    assert problems(real_config(), None) == [
        "No AWS credentials found: run `aws configure` (or `aws sso login` and set AWS_PROFILE), then "
        "`make deploy` again."
    ]
    assert problems(real_config(), HERE) == []
    assert problems(real_config(), None, "The AWS credentials do not work (x)") == [
        "The AWS credentials do not work (x)"
    ]


@pytest.mark.parametrize(
    ("identity", "named"),
    [
        (Identity("123123123123", "eu-central-2", "arn"), "account 123123123123, region eu-central-2"),
        (Identity("210987654321", "eu-west-1", "arn"), "account 210987654321, region eu-west-1"),
    ],
)
def test_a_secret_in_another_account_or_region_is_refused(identity: Identity, named: str) -> None:
    [problem] = problems(real_config(), identity)
    assert problem.startswith("dump.db_secret_arn is in account 210987654321, region eu-central-2")
    assert f"would be deployed to {named}" in problem


def test_offsite_copies_into_the_deploy_region_are_refused_before_cdk_starts() -> None:
    config = real_config(offsite__enabled=True, offsite__region="eu-central-2")
    [problem] = problems(config, Identity("210987654321", "eu-central-2", "arn"))
    assert problem.startswith("offsite.region is eu-central-2, the region the stack would be deployed to")
    # another region is fine
    assert problems(real_config(offsite__enabled=True), Identity("210987654321", "eu-central-2", "arn")) == []


def test_copies_into_another_account_are_deployed_only_with_the_home_accounts_credentials() -> None:
    cross = real_config(
        offsite__enabled=True, offsite__account="111122223333", offsite__home_account="210987654321"
    )
    assert problems(cross, HERE) == []
    # (the dump secret, in 210987654321, is named as well)
    problem, _ = problems(cross, Identity("111122223333", "eu-central-2", "arn"))
    assert problem.startswith(
        "offsite.home_account is 210987654321, but your credentials are for account 111122223333"
    )
    assert "Deploy with the home account's AWS_PROFILE" in problem


def test_placeholders_do_not_matter_when_the_dump_is_off() -> None:
    config = real_config(
        dump__enabled=False, dump__db_host="school-db.abcdefghijkl.eu-central-2.rds.amazonaws.com"
    )
    assert problems(config, Identity("999999999999", "us-east-1", "arn")) == []


def test_invalid_configuration_is_reported_before_anything_else() -> None:
    found = problems(with_changes(timezone="Nowhere"), None)
    assert found
    assert all(p.startswith("cdk.json: ") for p in found)


def test_working_credentials_name_the_account_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        identity, problem = who_am_i()
    assert problem is None
    assert identity is not None and (identity.account, identity.region) == ("123456789012", "eu-central-2")


def test_no_region_or_an_unreachable_sts_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    identity, problem = who_am_i()
    assert identity is None and problem is not None and problem.startswith("No AWS region set")
    monkeypatch.setenv("AWS_REGION", "eu-central-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")  # nothing listens there
    identity, problem = who_am_i()
    assert identity is None and problem is not None
    assert problem.startswith("Cannot reach AWS STS in eu-central-2 within 5 s")


def test_broken_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cdk.json"
    path.write_text('{\n  "context": {\n    "schoolbackup": {"timezone": "Europe/Zurich",}\n  }\n}\n')
    with pytest.raises(PreflightError, match=r"cdk.json is not valid JSON: .* at line 3, column 50"):
        read_context(path)
    with pytest.raises(PreflightError, match="not found"):
        read_context(tmp_path / "missing.json")


@pytest.mark.parametrize("args", [["--json-only"], []], ids=["make demo", "make deploy"])
def test_make_stops_on_broken_json_with_one_line_and_no_traceback(tmp_path: Path, args: list[str]) -> None:
    """Run in another directory: the cdk.json of the working directory counts, not the one next to
    the module."""
    (tmp_path / "cdk.json").write_text('{"context": {"schoolbackup": {]}}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "infra.preflight", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cdk.json is not valid JSON" in result.stderr and "line 1, column 31" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_and_deploy_run_the_checks_first() -> None:
    make = shutil.which("make")
    assert make is not None
    for target, expected in (("demo", "infra.preflight --json-only"), ("deploy", "infra.preflight")):
        dry = subprocess.run(
            [make, "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        ).stdout
        lines = dry.splitlines()
        check = next(i for i, line in enumerate(lines) if expected in line)
        cdk = next(
            i for i, line in enumerate(lines) if ("cdk " in line and target in line) or "cdk synth" in line
        )
        assert check < cdk, dry
