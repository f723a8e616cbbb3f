"""The catalogue's entries for verify's and prune's checks of the offsite copies (another region), their
age alarms and the weekly mail's line for them."""

from __future__ import annotations

from typing import Final

ENTRIES: Final[dict[str, tuple[str, str]]] = {
    # --- verify: which check ------------------------------------------------------------------------
    "verify.what_offsite": (
        "{kind} of {source}, offsite copy in {region}",
        "{kind} von {source}, Kopie ausser Haus in {region}",
    ),
    "verify.offsite_not_replicated": (
        "is not complete in the copy bucket yet ({missing} still missing): S3 replication copies each "
        "object on its own",
        "ist im Kopie-Bucket noch nicht vollständig (es fehlt noch: {missing}): Die S3-Replikation "
        "kopiert jedes Objekt einzeln",
    ),
    "verify.offsite_unreadable": (
        "The offsite copies in {region} could not be read ({error}); they were not checked.",
        "Die Kopien ausser Haus in {region} konnten nicht gelesen werden ({error}); sie wurden nicht geprüft.",
    ),
    "verify.offsite_unchecked": (
        "The offsite copies in {region} were not checked (this caller did not reach that region).",
        "Die Kopien ausser Haus in {region} wurden nicht geprüft (dieser Aufruf erreichte die Region nicht).",
    ),
    # --- the age alarms of the copies ----------------------------------------------------------------
    "alarm.offsite_backup_age": (
        "The newest good offsite copy ({what}) in {region} of some server or database is older than "
        "{hours} hours, or the daily check did not run for two days. The verify function's log names "
        "which one. The home backups may be fine: see whether the offsite copy job ran (its errors alarm) "
        "and, for dumps, the replication alarms.",
        "Die neueste gute Kopie ausser Haus ({what}) in {region} eines Servers oder einer Datenbank ist "
        "älter als {hours} Stunden, oder die tägliche Prüfung lief zwei Tage lang nicht. Das Protokoll "
        "der Funktion verify nennt, welche. Die Sicherungen zu Hause können in Ordnung sein: Prüfen Sie, "
        "ob der Kopierjob lief (sein Fehleralarm), und bei Dumps die Replikationsalarme.",
    ),
    "reason.offsite_backup_age": (
        "the newest good offsite copy ({what}) of a server or database was {value} hours old (target: at "
        "most {threshold} hours)",
        "die neueste gute Kopie ausser Haus ({what}) eines Servers oder einer Datenbank war {value} Stunden "
        "alt (Ziel: höchstens {threshold} Stunden)",
    ),
    "reason.ReplicationFailed": (
        "S3 could not replicate {value} dump object(s) to the offsite copy bucket",
        "S3 konnte {value} Dump-Objekt(e) nicht in den Kopie-Bucket ausser Haus replizieren",
    ),
    # --- the weekly mail --------------------------------------------------------------------------
    "finding.offsite_title": ("Offsite copies in {region}", "Kopien ausser Haus in {region}"),
    "next.offsite": (
        "Look at the verify function's log and at the offsite copy job (and for dumps the replication "
        "alarms); the home backups are listed above.",
        "Sehen Sie im Protokoll der Funktion verify und beim Kopierjob nach (bei Dumps auch bei den "
        "Replikationsalarmen); die Sicherungen zu Hause stehen oben.",
    ),
}
