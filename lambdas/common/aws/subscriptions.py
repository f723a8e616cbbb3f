"""Whether the alarm mails reach the admins: each address subscribed to the alarm topic and confirmed.

An e-mail subscription stays "PendingConfirmation" until the link in AWS's confirmation mail is clicked;
until then nothing the topic sends (alarms, the plain-text weekly mail) reaches that address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

PENDING = "PendingConfirmation"


@dataclass(frozen=True)
class MailSubscription:
    address: str
    subscribed: bool
    confirmed: bool


def mail_subscriptions(sns: SNSClient, topic_arn: str, addresses: Iterable[str]) -> list[MailSubscription]:
    """Each address (as configured) with its state on the topic; addresses compare case-insensitively."""
    confirmed: dict[str, bool] = {}
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for sub in page.get("Subscriptions", []):
            if sub.get("Protocol") == "email":
                address = sub.get("Endpoint", "").lower()
                arn = sub.get("SubscriptionArn", "")
                confirmed[address] = confirmed.get(address, False) or arn not in (PENDING, "", "Deleted")
    return [MailSubscription(a, a.lower() in confirmed, confirmed.get(a.lower(), False)) for a in addresses]


def topic_by_name(sns: SNSClient, name: str) -> str | None:
    """The ARN of the topic called ``name`` in this account and region, if there is one."""
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                return topic["TopicArn"]
    return None
