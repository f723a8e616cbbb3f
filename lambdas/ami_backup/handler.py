"""ami_backup: an AMI (NoReboot) of every selected EC2 instance, once per scheduled time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.ami_backup.images import AmiBackupSettings, create_images
from lambdas.common.aws import ec2_client
from lambdas.common.naming import scheduled_time
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = AmiBackupSettings.from_env()
    when = scheduled_time(event)
    result = create_images(ec2_client(), settings, when)
    result.publish_metrics()
    result.raise_if_failed()
    return result.as_dict()
