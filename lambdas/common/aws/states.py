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

UNKNOWN_FOR_PRUNE: Final = "schoolbackup does not know this state and never deletes what it does not know"
UNKNOWN_FOR_VERIFY: Final = "schoolbackup does not know this state, so it is not counted as good"


@dataclass(frozen=True)
class Reading:
    """What the table says about one backup. ``state`` is None for a state the table does not know."""

    state: State | None
    detail: str = ""  # why it is not usable, as the end of a sentence ("is still creating")
    gone: bool = False  # being deleted or deregistered: neither kept nor counted

    @property
    def known(self) -> bool:
        return self.state is not None

    def for_prune(self) -> State:
        return State.PENDING if self.state is None else self.state

    def for_verify(self) -> State:
        return State.FAILED if self.state is None else self.state

    def verify_detail(self) -> str:
        return f"{self.detail}: {UNKNOWN_FOR_VERIFY}" if self.state is None else self.detail


def _unknown(what: str, raw: str) -> Reading:
    return Reading(None, f"has {what} {raw!r}")


def _read(table: Mapping[str, State | None], raw: str, what: str) -> Reading:
    """One row of ``table``; a usable row is usable as far as this one state goes."""
    if raw not in table:
        return _unknown(what, raw)
    state = table[raw]
    if state is None:
        return Reading(None, f"is {raw}", gone=True)
    if state is State.PENDING:
        return Reading(state, f"is still {raw}")
    if state is State.FAILED:
        return Reading(state, f"has {what} {raw!r}")
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
        return Reading(State.FAILED, "has no EBS snapshot")
    missing = [s for s in snapshot_ids if s not in snapshot_states]
    if missing:
        return Reading(State.FAILED, f"is missing its EBS snapshot(s) {', '.join(missing)}")
    by_state = {s: EBS_SNAPSHOT_STATES.get(snapshot_states[s]) for s in snapshot_ids}
    failed = sorted(s for s, st in by_state.items() if st is State.FAILED)
    if failed:
        return Reading(State.FAILED, "has failed EBS snapshot(s) " + ", ".join(failed))
    unknown = sorted(s for s, st in by_state.items() if st is None)
    if unknown:
        raw = ", ".join(sorted({snapshot_states[s] for s in unknown}))
        return Reading(None, f"has EBS snapshot(s) in state {raw}")
    pending = sorted({snapshot_states[s] for s, st in by_state.items() if st is State.PENDING})
    if pending:
        return Reading(State.PENDING, "has EBS snapshot(s) still " + ", ".join(pending))
    return Reading(State.USABLE)


def dump_state(folder: DumpFolder, manifest: Manifest | None, problem: str = "") -> Reading:
    """A dump folder as listed, with its manifest (None: absent or unreadable, ``problem`` says why)."""
    if not folder.has_manifest:
        return Reading(State.FAILED, "has no manifest.json (a dump without one is a failed dump)")
    if manifest is None:
        return Reading(State.FAILED, problem or "has a manifest that could not be read")
    if not manifest.ok:
        return Reading(State.FAILED, f"reports status {manifest.status!r}")
    wrong: list[str] = []
    for obj in manifest.objects:
        size = folder.sizes.get(obj.key)
        short = obj.key.rsplit("/", 1)[-1]
        if size is None:
            wrong.append(f"{short} is missing")
        elif size != obj.bytes:
            wrong.append(f"{short} has {size} bytes, the manifest says {obj.bytes}")
    if wrong:
        return Reading(State.FAILED, "is damaged: " + "; ".join(wrong))
    return Reading(State.USABLE)
