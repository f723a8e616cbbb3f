"""The catalogue's entries for backupctl restore files (restore_files)."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {}
