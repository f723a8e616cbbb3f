"""Fixtures shared by every test: fake AWS credentials (never real ones), a region, a Lambda context."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-central-2",
    "AWS_REGION": "eu-central-2",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "POWERTOOLS_METRICS_NAMESPACE": "schoolbackup",
}


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees fake credentials; real ones from the developer's shell can never leak in."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "POWERTOOLS_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)


@dataclass
class FakeLambdaContext:
    """What Powertools reads from a Lambda context; ``remaining_ms`` lets tests shorten the clock."""

    function_name: str = "schoolbackup-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-central-2:123456789012:function:schoolbackup-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(autouse=True)
def clear_metrics() -> Iterator[None]:
    """Powertools keeps metrics in module state; start and end every test with none."""
    from lambdas.common.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
