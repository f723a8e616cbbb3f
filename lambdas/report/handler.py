"""report (weekly): one health mail in plain language, by SES when a sender is configured, else by SNS."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from lambdas.common.aws import cloudwatch_client, ec2_client, rds_client, s3_client, sesv2_client, sns_client
from lambdas.common.naming import scheduled_time
from lambdas.common.observability import accepts_missing_context, logger, metrics, traced
from lambdas.report.gather import ReportSettings, gather
from lambdas.report.render import HealthReport, render_html, render_text, subject

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient

# SES refusals that mean "this sender cannot send": the report then still reaches the admin by SNS.
SES_NOT_READY: Final = (
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "NotFoundException",
    "SendingPausedException",
    "AccountSuspendedException",
)


def send(report: HealthReport, settings: ReportSettings, ses: SESV2Client, sns: SNSClient) -> dict[str, str]:
    if settings.ses_sender:
        try:
            sent = ses.send_email(
                FromEmailAddress=settings.ses_sender,
                Destination={"ToAddresses": list(settings.recipients)},
                Content={
                    "Simple": {
                        "Subject": {"Data": subject(report), "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": render_text(report), "Charset": "UTF-8"},
                            "Html": {"Data": render_html(report), "Charset": "UTF-8"},
                        },
                    }
                },
            )
            return {"channel": "ses", "message_id": sent.get("MessageId", "")}
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code not in SES_NOT_READY:
                raise
            logger.error("SES refused the report; sending it by SNS", extra={"code": code})
            note = f"SES could not send from {settings.ses_sender} ({code}); is the sender verified in SES?"
            report = replace(report, notes=(*report.notes, note))
    published = sns.publish(TopicArn=settings.topic_arn, Subject=subject(report), Message=render_text(report))
    return {"channel": "sns", "message_id": published.get("MessageId", "")}


@accepts_missing_context
@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = ReportSettings.from_env()
    scheduled_time(event)  # validates the event; the report describes the state at the actual time
    now = datetime.now(UTC)
    report = gather(
        ec2=ec2_client(),
        rds=rds_client(),
        s3=s3_client(),
        cloudwatch=cloudwatch_client(),
        settings=settings,
        now=now,
    )
    sent = send(report, settings, sesv2_client(), sns_client())
    logger.info("health report sent", extra={**sent, "ok": report.ok, "problems": report.todo()})
    return {**sent, "ok": report.ok, "problems": report.todo(), "alarms": len(report.alarms)}
