"""The RDS manual-snapshot quota, read in one place for every job (rds_snapshot, prune, report).

AWS allows 100 manual snapshots per region by default. The quota is watched, not discovered by
failure: jobs publish it and the weekly mail shows it. Anything that keeps it from being read (access
denied, throttling beyond the retries, a 5xx HTML page botocore cannot parse, an emulator without the
call, an answer without the numbers) means "quota unknown": never a lost backup or a failed job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from lambdas.common.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

QUOTA_NAME: Final = "ManualSnapshots"
QUOTA_WARN_PERCENT: Final = 80.0


@dataclass(frozen=True)
class SnapshotQuota:
    used: int
    limit: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit > 0 else 100.0

    @property
    def reached(self) -> bool:
        return self.used >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"used": self.used, "max": self.limit, "percent": round(self.percent, 1)}


def read_snapshot_quota(rds: RDSClient) -> SnapshotQuota | None:
    """The manual-snapshot quota, or None (with a warning saying why) when it cannot be read."""
    try:
        quotas = rds.describe_account_attributes().get("AccountQuotas", [])
    except (
        ClientError,
        BotoCoreError,
        ResponseParserError,
        NotImplementedError,
        KeyError,
        ValueError,
    ) as err:
        # botocore raises ResponseParserError, or a bare KeyError, for an HTML page with status 200
        logger.warning("RDS manual snapshot quota unknown: it could not be read", extra={"error": repr(err)})
        return None
    for quota in quotas:
        if quota.get("AccountQuotaName") != QUOTA_NAME:
            continue
        try:
            used, limit = int(quota["Used"]), int(quota["Max"])
        except (KeyError, TypeError, ValueError):
            logger.warning(
                "RDS manual snapshot quota unknown: the answer has no numbers", extra={"quota": repr(quota)}
            )
            return None
        if limit <= 0:
            logger.warning(
                "RDS manual snapshot quota unknown: the answer says Max=0", extra={"quota": repr(quota)}
            )
            return None
        return SnapshotQuota(used=used, limit=limit)
    logger.warning("RDS manual snapshot quota unknown: the account attributes carry no ManualSnapshots quota")
    return None
