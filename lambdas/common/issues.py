"""Why one check failed: the causes verify gives its problems, for grouping them (lambdas.common.week).

Its own small module: verify needs these, not the whole week model (its import costs cold-start time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lambdas.common.messages import Msg

# Why one check failed (verify sets them).
MISSING: Final = "missing"  # no backup at all
LATEST_FAILED: Final = "latest-failed"  # the newest backup failed
NONE_USABLE: Final = "none-usable"  # backups exist, none is usable
STALE: Final = "stale"  # the newest good one is older than the target
PRUNE_OVERDUE: Final = "prune-overdue"  # prune should have removed old ones
BACKUP_CAUSES: Final = (LATEST_FAILED, MISSING, NONE_USABLE, STALE)  # one problem, the first one leads


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a check: its cause (MISSING, LATEST_FAILED, ...) and the sentence."""

    cause: str
    text: Msg
