"""restore_test (weekly): download a recent dump and prove it restores (checksums and content).

The record is named after the scheduled time and written once: a repeated run returns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.common.aws.clients import s3_client
from lambdas.common.contracts import scheduled_time
from lambdas.common.jobs.restore_test import run_restore_test
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.publishing import publish_restore_test_result
from lambdas.common.settings import RestoreTestSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = RestoreTestSettings.from_env()
    result = run_restore_test(s3_client(), settings, scheduled_time(event))
    publish_restore_test_result(result)
    result.raise_if_failed()
    return result.as_dict(settings.bucket)
