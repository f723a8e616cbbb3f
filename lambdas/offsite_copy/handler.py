"""offsite_copy: the newest usable RDS snapshot and AMI of each source, copied into the offsite region."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.common.contracts import scheduled_time
from lambdas.common.jobs.offsite_copy import copy_offsite, home_and_offsite
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.publishing import publish_copy_result
from lambdas.common.settings import OffsiteCopySettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = OffsiteCopySettings.from_env()
    home, offsite, target = home_and_offsite(settings)
    result = copy_offsite(home, offsite, settings, when=scheduled_time(event), target=target)
    publish_copy_result(result)
    result.raise_if_failed()
    return result.as_dict()
