"""iam_review (monthly): MFA, old and unused keys, admin-grade policies, who could destroy the backups,
and roles of the stack changed by hand. The record is named after the month and written once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.common.aws.clients import cloudformation_client, iam_client, kms_client, s3_client
from lambdas.common.contracts import scheduled_time
from lambdas.common.jobs.iam_review import Clients, run_iam_review
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.publishing import publish_iam_review_result
from lambdas.common.settings import IamReviewSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = IamReviewSettings.from_env()
    when = scheduled_time(event)
    clients = Clients(iam_client(), cloudformation_client(), s3_client(), kms_client())
    result = run_iam_review(clients, settings, when)
    publish_iam_review_result(result)
    return result.as_dict(settings.bucket)
