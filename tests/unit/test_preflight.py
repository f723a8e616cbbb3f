"""`make deploy` refuses the example addresses and missing credentials, each in one sentence."""

from __future__ import annotations

from infra.preflight import problems
from tests.unit.test_config import EXAMPLE, with_changes


def test_example_addresses_are_refused() -> None:
    found = problems(EXAMPLE, has_credentials=True)
    assert len(found) == 1
    assert "it-admin@example.org" in found[0]
    assert "before deploying" in found[0]


def test_missing_credentials_is_one_clear_sentence() -> None:
    real = with_changes(notification_emails=["it@school-x.ch", "deputy@school-x.ch"])
    assert problems(real, has_credentials=False) == [
        "No AWS credentials found: run `aws configure` (or `aws sso login` and set AWS_PROFILE), then "
        "`make deploy` again."
    ]
    assert problems(real, has_credentials=True) == []


def test_invalid_configuration_is_reported_before_anything_else() -> None:
    found = problems(with_changes(timezone="Nowhere"), has_credentials=False)
    assert found
    assert all(p.startswith("cdk.json: ") for p in found)
