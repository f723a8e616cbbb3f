"""Mail to the admin: by SES (HTML and text) from a verified sender, or as plain text through the alarm topic.

The only module that sends mail; the weekly report job decides what to say and which way to send it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from lambdas.common.aws.errors import error_code

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient

# SES refusals that mean "this sender cannot send (yet)": the mail can still reach the admin by SNS.
SES_NOT_READY: Final = (
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "NotFoundException",
    "SendingPausedException",
    "AccountSuspendedException",
)


class SesNotReady(RuntimeError):
    """SES refused the sender (not verified, sending paused...): ``code`` is its error code."""

    def __init__(self, sender: str, code: str) -> None:
        super().__init__(f"SES could not send from {sender} ({code})")
        self.sender, self.code = sender, code


def send_by_ses(
    ses: SESV2Client, sender: str, recipients: Sequence[str], *, subject: str, text: str, html: str
) -> str:
    """Send one HTML + text mail; returns the message id, raises SesNotReady when the sender cannot send."""
    try:
        sent = ses.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": list(recipients)},
            Content={
                "Simple": {
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": text, "Charset": "UTF-8"},
                        "Html": {"Data": html, "Charset": "UTF-8"},
                    },
                }
            },
        )
    except ClientError as err:
        code = error_code(err)
        if code in SES_NOT_READY:
            raise SesNotReady(sender, code) from err
        raise
    return sent.get("MessageId", "")


def publish_to_topic(sns: SNSClient, topic_arn: str, subject: str, text: str) -> str:
    """Plain text to every subscriber of the topic (SNS subjects are at most 100 characters)."""
    return sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=text).get("MessageId", "")
