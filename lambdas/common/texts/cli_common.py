"""The catalogue's entries for backupctl's shared messages (context, run, prune)."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {}
