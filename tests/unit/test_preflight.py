"""`make deploy` refuses the example values and missing credentials, each in one sentence."""

from __future__ import annotations

from typing import Any

from infra.preflight import problems
from tests.unit.test_config import EXAMPLE, with_changes


def real_config(**changes: Any) -> dict[str, Any]:
    real = {
        "notification_emails": ["it@school-x.ch", "deputy@school-x.ch"],
        "dump__db_host": "school.c9akciq32.eu-central-2.rds.amazonaws.com",
        "dump__db_secret_arn": "arn:aws:secretsmanager:eu-central-2:210987654321:secret:schoolbackup/dump-reader-Xy12Ab",
    }
    return with_changes(**{**real, **changes})


def test_example_addresses_and_placeholders_are_refused() -> None:
    found = problems(EXAMPLE, has_credentials=True)
    assert len(found) == 2
    assert "it-admin@example.org" in found[0]
    assert "before deploying" in found[0]
    assert "dump.db_secret_arn" in found[1]
    assert "dump.db_host" in found[1]


def test_missing_credentials_is_one_clear_sentence() -> None:
    assert problems(real_config(), has_credentials=False) == [
        "No AWS credentials found: run `aws configure` (or `aws sso login` and set AWS_PROFILE), then "
        "`make deploy` again."
    ]
    assert problems(real_config(), has_credentials=True) == []


def test_placeholders_do_not_matter_when_the_dump_is_off() -> None:
    config = real_config(
        dump__enabled=False, dump__db_host="school-db.abcdefghijkl.eu-central-2.rds.amazonaws.com"
    )
    assert problems(config, has_credentials=True) == []


def test_invalid_configuration_is_reported_before_anything_else() -> None:
    found = problems(with_changes(timezone="Nowhere"), has_credentials=False)
    assert found
    assert all(p.startswith("cdk.json: ") for p in found)
