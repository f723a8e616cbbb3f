"""Metrics carry exactly the dimensions the code sets, so the alarms (which match on them) see data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.common import contracts
from lambdas.common.jobs.verify import Check, VerifyResult
from lambdas.common.observability import metrics
from lambdas.common.publishing import publish_verify_result


def _directives(stdout: str) -> list[tuple[str, list[list[str]]]]:
    found = []
    for line in stdout.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                found += [(m["Name"], directive["Dimensions"]) for m in directive["Metrics"]]
    return found


def test_shared_metrics_have_no_service_dimension(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.add_metric(name=contracts.RESTORE_TEST_PASSED, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    assert _directives(capsys.readouterr().out) == [(contracts.RESTORE_TEST_PASSED, [[]])]


def test_worst_age_per_kind_is_published_with_only_the_kind_dimension(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    check = Check(source="i-0123456789abcdef0", kind=contracts.KIND_AMI, target_hours=192, now=now)
    publish_verify_result(VerifyResult(now=now, checks=[check], general=["no AMI"]))
    metrics.flush_metrics()
    directives = dict(_directives(capsys.readouterr().out))
    assert directives[contracts.WORST_BACKUP_AGE_HOURS] == [[contracts.KIND]]
    assert directives[contracts.VERIFY_PASSED] == [[contracts.SOURCE, contracts.KIND]]
    assert directives[contracts.VERIFY_FAILURES] == [[]]
