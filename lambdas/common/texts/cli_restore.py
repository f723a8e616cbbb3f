"""The catalogue's entries for backupctl restore db|server|dump (restore_common, restore_db, restore_server, dumpwriter, later)."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {}
