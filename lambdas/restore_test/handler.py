"""restore_test (weekly): download a recent dump and prove it restores (checksums and content)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.common import metric_names
from lambdas.common.aws import s3_client
from lambdas.common.naming import scheduled_time
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.settings import SettingsError, env_str
from lambdas.restore_test.restore import PICKS, run_restore_test, write_record

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class RestoreTestFailed(RuntimeError):
    """The restore test found a problem; raised after the record and the metrics were written."""


@dataclass(frozen=True)
class RestoreTestSettings:
    bucket: str
    pick: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RestoreTestSettings:
        env = os.environ if environ is None else environ
        pick = env.get("RESTORE_TEST_PICK", "").strip() or "newest"
        if pick not in PICKS:
            raise SettingsError(f"environment variable RESTORE_TEST_PICK={pick!r} must be newest or random")
        return cls(bucket=env_str("BACKUP_BUCKET", environ), pick=pick)


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = RestoreTestSettings.from_env()
    scheduled_time(event)  # validates the event; the window and the record use the actual time
    now = datetime.now(UTC).replace(microsecond=0)
    s3 = s3_client()
    test = run_restore_test(s3, settings.bucket, now, settings.pick)
    key = write_record(s3, settings.bucket, test)
    metrics.add_metric(name=metric_names.RESTORE_TEST_PASSED, unit=MetricUnit.Count, value=int(test.passed))
    metrics.add_metric(
        name=metric_names.RESTORE_TEST_SECONDS, unit=MetricUnit.Seconds, value=round(test.duration_seconds, 3)
    )
    result = {**test.as_dict(), "record": f"s3://{settings.bucket}/{key}"}
    if not test.passed:
        logger.error("restore test failed", extra={"result": result})
        raise RestoreTestFailed("Restore test failed: " + " ".join(test.all_problems()))
    logger.info("restore test passed", extra={"result": result})
    return result
