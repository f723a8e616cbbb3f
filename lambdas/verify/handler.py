"""verify (daily): a fresh, intact backup of every kind for every selected source, as metrics.

Publishes per Source+Kind the age of the newest good backup and VerificationPassed (1/0), per Kind
the worst age over all sources (what the age alarms watch), and VerificationFailures. With offsite
copies (OFFSITE_REGION) the newest copies in the offsite region are checked too, and their metrics carry
the extra dimension Region. Raises after publishing when any check failed, with one sentence per problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.common.aws.clients import ec2_client, offsite_clients_of, rds_client, s3_client
from lambdas.common.contracts import scheduled_time
from lambdas.common.jobs.verify import run_checks
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.common.publishing import publish_verify_result
from lambdas.common.settings import VerifySettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = VerifySettings.from_env()
    offsite = offsite_clients_of(settings.offsite, "schoolbackup-verify")
    # ages are measured from the scheduled time, else from now (DESIGN.md)
    result = run_checks(
        ec2_client(), rds_client(), s3_client(), settings, scheduled_time(event), offsite=offsite
    )
    publish_verify_result(result)
    result.raise_if_failed()
    return result.as_dict()
