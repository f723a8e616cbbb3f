"""The catalogue's entries for backupctl simulate (simulate, rehearsal)."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {}
