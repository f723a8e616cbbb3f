"""report (weekly): one health mail in plain language, once per scheduled time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.common.aws import clients
from lambdas.common.contracts import scheduled_time
from lambdas.common.jobs.report import send_weekly_report
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.settings import ReportSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = ReportSettings.from_env()
    result = send_weekly_report(
        ec2=clients.ec2_client(),
        rds=clients.rds_client(),
        s3=clients.s3_client(),
        cloudwatch=clients.cloudwatch_client(),
        ses=clients.sesv2_client(),
        sns=clients.sns_client(),
        settings=settings,
        now=scheduled_time(event),
        offsite=clients.offsite_clients_of(settings.verify.offsite, "schoolbackup-report"),
    )
    return result.as_dict()
