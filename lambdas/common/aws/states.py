"""The one table from AWS states to schoolbackup's states (DESIGN.md, "Backup states"; README, same table).

Every part reads backups through it: prune, verify, the weekly report, and later backupctl and the
drill. Each AWS state maps to exactly one of ``usable`` (restorable now), ``pending`` (still being
made) or ``failed``; a few mean the backup is going away (``gone``). A state this table does not know
is read differently on purpose, and both readings say so in words:

- prune reads it as pending: never delete what you don't know (:meth:`Reading.for_prune`);
- verify reads it as failed: never call good what you don't know (:meth:`Reading.for_verify`).

An AMI is usable only when the image is ``available`` *and* every EBS snapshot it needs is
``completed``: an available image whose snapshot is missing or broken cannot be launched. A dump is
usable only with a valid ``manifest.json`` that says ``ok`` and lists objects that are all there with
the listed sizes (DESIGN.md: a dump without a manifest is a failed dump).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from lambdas.common.contracts import State
from lambdas.common.manifest import DumpFolder, Manifest
from lambdas.common.messages import Msg, msg

RDS_SNAPSHOT_STATES: Final[Mapping[str, State | None]] = {
    "available": State.USABLE,
    "creating": State.PENDING,
    "copying": State.PENDING,
    "pending": State.PENDING,
    "modifying": State.PENDING,
    "upgrading": State.PENDING,
    "failed": State.FAILED,
    "incompatible-restore": State.FAILED,
    "incompatible-parameters": State.FAILED,
    "incompatible-network": State.FAILED,
    "incompatible-option-group": State.FAILED,
    "deleting": None,  # going away: not a backup any more
}
AMI_STATES: Final[Mapping[str, State | None]] = {
    "available": State.USABLE,  # ... when its snapshots are completed, see ami_state
    "pending": State.PENDING,
    "transient": State.PENDING,
    "failed": State.FAILED,
    "error": State.FAILED,
    "invalid": State.FAILED,
    "disabled": State.FAILED,  # cannot be launched; still holds its snapshots
    "deregistered": None,
}
EBS_SNAPSHOT_STATES: Final[Mapping[str, State]] = {
    "completed": State.USABLE,
    "pending": State.PENDING,
    "error": State.FAILED,
}


@dataclass(frozen=True)
class Reading:
    """What the table says about one backup. ``state`` is None for a state the table does not know."""

    state: State | None
    text: Msg | None = None  # why it is not usable, as the end of a sentence ("is still creating")
    gone: bool = False  # being deleted or deregistered: neither kept nor counted

    @property
    def detail(self) -> str:
        """The reason in English (logs)."""
        return self.describe("en")

    def describe(self, language: str) -> str:
        return self.text.render(language) if self.text is not None else ""

    @property
    def known(self) -> bool:
        return self.state is not None

    def for_prune(self) -> State:
        return State.PENDING if self.state is None else self.state

    def for_verify(self) -> State:
        return State.FAILED if self.state is None else self.state

    def verify_text(self) -> Msg | None:
        """The reason as verify says it: an unknown state is not counted as good, in words."""
        if self.state is None and self.text is not None:
            return msg("state.unknown_verify", detail=self.text)
        return self.text

    def verify_detail(self, language: str = "en") -> str:
        text = self.verify_text()
        return text.render(language) if text is not None else ""

    def prune_detail(self, language: str = "en") -> str:
        """The reason as prune says it: an unknown state is never deleted, in words."""
        if self.state is None and self.text is not None:
            return msg("state.unknown_prune", detail=self.text).render(language)
        return self.describe(language)


def _has(what: str, raw: str) -> Msg:
    return msg("state.has_status" if what == "status" else "state.has_state", raw=raw)


def _unknown(what: str, raw: str) -> Reading:
    return Reading(None, _has(what, raw))


def _read(table: Mapping[str, State | None], raw: str, what: str) -> Reading:
    """One row of ``table``; a usable row is usable as far as this one state goes."""
    if raw not in table:
        return _unknown(what, raw)
    state = table[raw]
    if state is None:
        return Reading(None, msg("state.going", raw=raw), gone=True)
    if state is State.PENDING:
        return Reading(state, msg("state.still", raw=raw))
    if state is State.FAILED:
        return Reading(state, _has(what, raw))
    return Reading(state)


def rds_snapshot_state(status: str) -> Reading:
    """An RDS manual snapshot by its ``Status``."""
    return _read(RDS_SNAPSHOT_STATES, status, "status")


def ami_state(  # noqa: PLR0911 - one return per row of the table
    image_state: str, snapshot_ids: Sequence[str], snapshot_states: Mapping[str, str]
) -> Reading:
    """An AMI by its ``State`` and the ``State`` of each EBS snapshot it needs (absent: not found)."""
    image = _read(AMI_STATES, image_state, "state")
    if image.state is not State.USABLE:
        return image
    if not snapshot_ids:
        return Reading(State.FAILED, msg("state.no_ebs"))
    missing = [s for s in snapshot_ids if s not in snapshot_states]
    if missing:
        return Reading(State.FAILED, msg("state.ebs_missing", ids=", ".join(missing)))
    by_state = {s: EBS_SNAPSHOT_STATES.get(snapshot_states[s]) for s in snapshot_ids}
    failed = sorted(s for s, st in by_state.items() if st is State.FAILED)
    if failed:
        return Reading(State.FAILED, msg("state.ebs_failed", ids=", ".join(failed)))
    unknown = sorted(s for s, st in by_state.items() if st is None)
    if unknown:
        raw = ", ".join(sorted({snapshot_states[s] for s in unknown}))
        return Reading(None, msg("state.ebs_unknown", raw=raw))
    pending = sorted({snapshot_states[s] for s, st in by_state.items() if st is State.PENDING})
    if pending:
        return Reading(State.PENDING, msg("state.ebs_pending", raw=", ".join(pending)))
    return Reading(State.USABLE)


def dump_state(folder: DumpFolder, manifest: Manifest | None, problem: Msg | None = None) -> Reading:
    """A dump folder as listed, with its manifest (None: absent or unreadable, ``problem`` says why)."""
    if not folder.has_manifest:
        return Reading(State.FAILED, msg("state.no_manifest"))
    if manifest is None:
        return Reading(State.FAILED, problem or msg("state.manifest_unreadable"))
    if not manifest.ok:
        return Reading(State.FAILED, msg("state.manifest_status", status=manifest.status))
    wrong: list[Msg] = []
    for obj in manifest.objects:
        size = folder.sizes.get(obj.key)
        short = obj.key.rsplit("/", 1)[-1]
        if size is None:
            wrong.append(msg("state.object_missing", name=short))
        elif size != obj.bytes:
            wrong.append(msg("state.object_size", name=short, size=size, expected=obj.bytes))
    if wrong:
        return Reading(State.FAILED, msg("state.damaged", what=tuple(wrong)))
    return Reading(State.USABLE)
