"""The catalogue's entries for the offsite copy job (lambdas/common/jobs/offsite_copy.py): why a source's
copy could not be made, in words the admin reads in the job's log and in the alarm's error."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {
    "offsite.quota_full": (
        "the RDS manual snapshot quota in {region} is full ({used} of {limit} in use), so the copy {name} "
        "was not made; let prune run there or ask AWS for a higher ManualSnapshots quota in {region}",
        "das Kontingent für manuelle RDS-Snapshots in {region} ist voll ({used} von {limit} belegt), darum "
        "wurde die Kopie {name} nicht erstellt; lassen Sie prune dort laufen oder beantragen Sie bei AWS ein "
        "höheres ManualSnapshots-Kontingent in {region}",
    ),
    "offsite.quota_refused": (
        "RDS refused the copy {name}: the manual snapshot quota in {region} is full; let prune run there or "
        "ask AWS for a higher ManualSnapshots quota in {region}",
        "RDS hat die Kopie {name} abgelehnt: Das Kontingent für manuelle RDS-Snapshots in {region} ist voll; "
        "lassen Sie prune dort laufen oder beantragen Sie bei AWS ein höheres ManualSnapshots-Kontingent in "
        "{region}",
    ),
    "offsite.copy_failed": (
        "the offsite copy {name} in {region} failed (state {state}); the next original is copied again "
        "as usual. Most often the key of the original cannot be used for the copy: see the copy in the "
        "console of {region}",
        "die Kopie ausser Haus {name} in {region} ist fehlgeschlagen (Zustand {state}); das nächste "
        "Original wird wie gewohnt wieder kopiert. Meist kann der Schlüssel des Originals für die Kopie "
        "nicht verwendet werden: Sehen Sie sich die Kopie in der Konsole von {region} an",
    ),
    "offsite.not_listed": (
        "the originals at home or the copies in {region} could not be listed ({error}); no copy was made "
        "this run",
        "die Originale am Heimatstandort oder die Kopien in {region} konnten nicht aufgelistet werden "
        "({error}); in diesem Lauf wurde keine Kopie erstellt",
    ),
    "offsite.staging_failed": (
        "the staging copy {name} in {region} (of this account, to be shared with the target account) "
        "failed (it {state}); it was deleted and the next run starts it again. Most often the key of "
        "the original cannot be used for the copy: see the snapshot in the console of {region}",
        "die Zwischenkopie {name} in {region} (in diesem Konto, zum Teilen mit dem Zielkonto) ist "
        "fehlgeschlagen ({state}); sie wurde gelöscht und der nächste Lauf beginnt sie neu. Meist "
        "kann der Schlüssel des Originals für die Kopie nicht verwendet werden: Sehen Sie sich den Snapshot "
        "in der Konsole von {region} an",
    ),
}
