"""The catalogue's entries for backupctl restore files (restore_files)."""

from __future__ import annotations

from typing import Final

# {dump} is "the dump of 26.11.2026 01:30 (20261126T0030Z)" / "Dump vom 26.11.2026 01:30 (...)": the German
# one has no article, each German sentence puts the one its case needs ("der", "dem").
ENTRIES: Final[dict[str, tuple[str, str]]] = {
    # --- the command line ------------------------------------------------------------------------
    "cli.files.bad_date": (
        "--date {raw} is not a day like 2026-11-26 (YYYY-MM-DD).",
        "--date {raw} ist kein Tag in der Form 2026-11-26 (JJJJ-MM-TT).",
    ),
    "cli.files.path_dotdot": (
        "--path {raw} contains '..'; give a path inside the archive like var/www/uploads.",
        "--path {raw} enthält '..'; geben Sie einen Pfad innerhalb des Archivs an, z. B. var/www/uploads.",
    ),
    "cli.files.no_folder": (
        "The folder {parent} does not exist: create it first or choose another --to.",
        "Der Ordner {parent} existiert nicht: Legen Sie ihn zuerst an oder wählen Sie ein anderes --to.",
    ),
    "cli.files.to_symlink": (
        "--to {dest} is a symbolic link; give a new path (nothing is ever overwritten).",
        "--to {dest} ist ein symbolischer Link; geben Sie einen neuen Pfad an (es wird nie etwas "
        "überschrieben).",
    ),
    "cli.files.to_not_folder": (
        "--to {dest} exists and is not a folder; choose a new or empty folder.",
        "--to {dest} existiert und ist kein Ordner; wählen Sie einen neuen oder leeren Ordner.",
    ),
    "cli.files.to_not_empty": (
        "--to {dest} is not empty; restore into a new or empty folder (nothing is ever overwritten).",
        "--to {dest} ist nicht leer; stellen Sie in einen neuen oder leeren Ordner wieder her (es wird nie "
        "etwas überschrieben).",
    ),
    "cli.files.to_exists": (
        "--to {dest} exists already; choose a new file name (nothing is ever overwritten).",
        "--to {dest} existiert bereits; wählen Sie einen neuen Dateinamen (es wird nie etwas überschrieben).",
    ),
    # --- which dump ------------------------------------------------------------------------------
    "cli.files.dump_of": ("the dump of {when} ({stamp})", "Dump vom {when} ({stamp})"),
    "cli.files.none": ("none", "keine"),
    "cli.files.no_such_source": (
        "There are no dumps of --source {source} in {where} (sources with dumps: {known}).",
        "In {where} gibt es keine Dumps von --source {source} (Quellen mit Dumps: {known}).",
    ),
    "cli.files.no_dumps": (
        "There are no dumps at all in {where}: there is nothing to restore from.",
        "In {where} gibt es überhaupt keine Dumps: Es gibt nichts, woraus wiederhergestellt werden könnte.",
    ),
    "cli.files.several_sources": (
        "The bucket holds dumps of several sources ({sources}); choose one with --source.",
        "Der Bucket enthält Dumps mehrerer Quellen ({sources}); wählen Sie eine mit --source.",
    ),
    "cli.files.not_usable": ("is not usable", "ist nicht verwendbar"),
    "cli.files.dump_reason": ("{dump} {reason}", "der {dump} {reason}"),
    "cli.files.no_usable": (
        "No usable dump of {source} on {day} ({zone}): {why}.",
        "Kein verwendbarer Dump von {source} am {day} ({zone}): {why}.",
    ),
    "cli.files.no_dump": (
        "There is no dump of {source} on {day} ({zone}).",
        "Es gibt keinen Dump von {source} am {day} ({zone}).",
    ),
    "cli.files.nearest_day": (
        "The nearest day with a usable dump: {days} (pass it as --date).",
        "Der nächste Tag mit einem verwendbaren Dump: {days} (als --date angeben).",
    ),
    "cli.files.nearest_days": (
        "The nearest days with a usable dump: {days} (pass it as --date).",
        "Die nächsten Tage mit einem verwendbaren Dump: {days} (einen davon als --date angeben).",
    ),
    "cli.files.two_days": ("{first} and {second}", "{first} und {second}"),
    "cli.files.none_near": (
        "No day from {start} to {end} has a usable dump either (see `backupctl status`).",
        "Auch zwischen dem {start} und dem {end} hat kein Tag einen verwendbaren Dump (siehe "
        "`backupctl status`).",
    ),
    # --- download, verified ----------------------------------------------------------------------
    "cli.files.refused_size": (
        "Refused {file} of {dump}: it has {got_bytes} bytes, the manifest says {bytes} (SHA-256 {got}, "
        "the manifest says {sha256}); the object is truncated or was replaced. Nothing was written; try "
        "another --date.",
        "{file} aus dem {dump} abgelehnt: Die Datei hat {got_bytes} Bytes, laut Manifest {bytes} (SHA-256 "
        "{got}, laut Manifest {sha256}); das Objekt ist abgeschnitten oder wurde ersetzt. Es wurde nichts "
        "geschrieben; versuchen Sie ein anderes --date.",
    ),
    "cli.files.refused_sha": (
        "Refused {file} of {dump}: its SHA-256 is {got}, the manifest says {sha256} ({bytes} bytes each); "
        "the object was changed or replaced after the dump. Nothing was written; try another --date.",
        "{file} aus dem {dump} abgelehnt: Die SHA-256-Prüfsumme ist {got}, laut Manifest {sha256} (je "
        "{bytes} Bytes); das Objekt wurde nach dem Dump verändert oder ersetzt. Es wurde nichts "
        "geschrieben; versuchen Sie ein anderes --date.",
    ),
    "cli.files.cannot_write_in": (
        "Cannot write in {where}: {error}.",
        "In {where} kann nicht geschrieben werden: {error}.",
    ),
    "cli.files.no_room": (
        "{where} has {free} free, {what} needs {size}; free some space or choose another --to.",
        "{where} hat {free} frei, {what} braucht {size}; schaffen Sie Platz oder wählen Sie ein anderes "
        "--to.",
    ),
    "cli.files.cannot_decompress": (
        "{file} of {dump} {error}.",
        "{file} aus dem {dump} kann nicht entpackt werden (auf Englisch: {error}).",
    ),
    "cli.files.broken_dump": (
        "{file} of {dump} matches its manifest but {error}: the dump was broken when it was written. "
        "Nothing was written; try another --date.",
        "{file} aus dem {dump} stimmt mit dem Manifest überein, ist aber fehlerhaft (auf Englisch: "
        "{error}): Der Dump war schon beim Schreiben kaputt. Es wurde nichts geschrieben; versuchen Sie "
        "ein anderes --date.",
    ),
    "cli.files.temp_file": ("the temporary file", "die temporäre Datei"),
    "cli.files.cannot_write": (
        "Cannot write {name}: {error}. Nothing was restored.",
        "{name} kann nicht geschrieben werden: {error}. Es wurde nichts wiederhergestellt.",
    ),
    # --- files -----------------------------------------------------------------------------------
    "cli.files.unsafe_dotdot": ("a path with '..' in it", "ein Pfad, der '..' enthält"),
    "cli.files.unsafe_hard_link": (
        "a hard link to a file that is not restored",
        "ein harter Link auf eine Datei, die nicht wiederhergestellt wird",
    ),
    "cli.files.unsafe_absolute_link": ("a link to an absolute path", "ein Link auf einen absoluten Pfad"),
    "cli.files.unsafe_link_outside": (
        "a link that points outside the restored folder",
        "ein Link, der aus dem wiederhergestellten Ordner hinauszeigt",
    ),
    "cli.files.unsafe_special": ("a device or other special file", "ein Gerät oder eine andere Spezialdatei"),
    "cli.files.unsafe_outside": (
        "a path outside the restored folder",
        "ein Pfad ausserhalb des wiederhergestellten Ordners",
    ),
    "cli.files.no_archive": (
        "{dump} lists no files archive in its manifest; restore files needs exactly one.",
        "Der {dump} führt in seinem Manifest kein Dateiarchiv auf; backupctl restore files braucht genau eines.",
    ),
    "cli.files.many_archives": (
        "{dump} lists {n} files archives in its manifest; restore files needs exactly one.",
        "Der {dump} führt in seinem Manifest {n} Dateiarchive auf; backupctl restore files braucht genau "
        "eines.",
    ),
    "cli.files.filled_meanwhile": (
        "--to {dest} was filled by something else meanwhile; nothing was overwritten.",
        "--to {dest} wurde inzwischen von etwas anderem befüllt; es wurde nichts überschrieben.",
    ),
    "cli.files.cannot_move": (
        "Cannot move the restored files to {dest}: {error}.",
        "Die wiederhergestellten Dateien können nicht nach {dest} verschoben werden: {error}.",
    ),
    "cli.files.cannot_unpack": (
        "{file} of {dump} matches its manifest but cannot be unpacked ({error}). Nothing was restored; "
        "try another --date.",
        "{file} aus dem {dump} stimmt mit dem Manifest überein, lässt sich aber nicht entpacken ({error}). "
        "Es wurde nichts wiederhergestellt; versuchen Sie ein anderes --date.",
    ),
    "cli.files.cannot_write_restored": (
        "Cannot write in {where}: {error}. Nothing was restored.",
        "In {where} kann nicht geschrieben werden: {error}. Es wurde nichts wiederhergestellt.",
    ),
    "cli.files.nothing_under": (
        "Nothing in {file} of {dump} lies under --path {path}{refused}; {where}: {shown}. Nothing was "
        "written.",
        "In {file} aus dem {dump} liegt nichts unter --path {path}{refused}; {where}: {shown}. Es wurde "
        "nichts geschrieben.",
    ),
    "cli.files.unsafe_there": (
        " ({n} entries there are unsafe to restore)",
        " ({n} Einträge dort lassen sich nicht sicher wiederherstellen)",
    ),
    "cli.files.folder_holds": ("{base} holds", "{base} enthält"),
    "cli.files.top_holds": ("the archive's top level holds", "die oberste Ebene des Archivs enthält"),
    "cli.files.nothing": ("nothing", "nichts"),
    # --- dump ------------------------------------------------------------------------------------
    "cli.files.no_db": (
        "{dump} holds no database dump (its manifest lists only files); try restore files.",
        "Der {dump} enthält keinen Datenbank-Dump (sein Manifest führt nur Dateien auf); versuchen Sie "
        "backupctl restore files.",
    ),
    "cli.files.no_such_db": (
        "{dump} holds no dump of --db {db}; it holds: {names}.",
        "Der {dump} enthält keinen Dump von --db {db}; er enthält: {names}.",
    ),
    "cli.files.several_dbs": (
        "{dump} holds dumps of several databases ({names}); choose one with --db.",
        "Der {dump} enthält Dumps mehrerer Datenbanken ({names}); wählen Sie eine mit --db.",
    ),
    "cli.files.created_meanwhile": (
        "--to {dest} was created by something else meanwhile; nothing was overwritten.",
        "--to {dest} wurde inzwischen von etwas anderem angelegt; es wurde nichts überschrieben.",
    ),
    "cli.files.rds_definer": (
        "On RDS, set log_bin_trust_function_creators=1 in the instance's parameter group first (the dump "
        "has triggers and routines), or loading stops at ERROR 1419",
        "Bei RDS zuerst log_bin_trust_function_creators=1 in der Parametergruppe der Instanz setzen (der "
        "Dump enthält Trigger und Routinen), sonst bricht das Laden mit ERROR 1419 ab",
    ),
    "cli.files.suffix_compressed": (
        "--to {name} names a {asked} file, but {file} is stored {stored}; end the name in .sql "
        "(decompressed) or as stored.",
        "--to {name} bezeichnet eine {asked}-Datei, aber {file} ist mit {stored} komprimiert gespeichert; "
        "lassen Sie den Namen auf .sql enden (entpackt) oder so wie gespeichert.",
    ),
    "cli.files.suffix_uncompressed": (
        "--to {name} names a {asked} file, but {file} is stored uncompressed; end the name in .sql "
        "(decompressed) or as stored.",
        "--to {name} bezeichnet eine {asked}-Datei, aber {file} ist unkomprimiert gespeichert; lassen Sie "
        "den Namen auf .sql enden (entpackt) oder so wie gespeichert.",
    ),
    # --- output ----------------------------------------------------------------------------------
    "cli.files.bytes": ("{n} bytes", "{n} Bytes"),
    "cli.files.skipped": ("Skipped {dump}: it {reason}.", "Übersprungen: Der {dump} {reason}."),
    "cli.files.verified": (
        "{file}: {bytes} bytes, SHA-256 {sha256}, as the manifest lists it.",
        "{file}: {bytes} Bytes, SHA-256 {sha256}, wie im Manifest aufgeführt.",
    ),
    "cli.files.restored_one": (
        "Restored {count} file ({size}){under} into {to}",
        "{count} Datei ({size}){under} nach {to} wiederhergestellt",
    ),
    "cli.files.restored_many": (
        "Restored {count} files ({size}){under} into {to}",
        "{count} Dateien ({size}){under} nach {to} wiederhergestellt",
    ),
    "cli.files.under": (" under {path}", " unter {path}"),
    "cli.files.from_dump": (
        "from {dump} of {source} ({zone}), verified:",
        "aus dem {dump} von {source} ({zone}), geprüft:",
    ),
    "cli.files.not_restored": (
        "Not restored, unsafe to unpack: {shown}{more}.",
        "Nicht wiederhergestellt, weil das Entpacken unsicher wäre: {shown}{more}.",
    ),
    "cli.files.and_more": (" and {n} more", " und {n} weitere"),
    "cli.files.wrote_sql": (
        "Wrote the SQL of database {db} ({size}) to {to}",
        "SQL der Datenbank {db} ({size}) nach {to} geschrieben",
    ),
    "cli.files.wrote_stored": (
        "Wrote the {compression}-compressed dump of database {db} ({size}, as stored) to {to}",
        "{compression}-komprimierter Dump der Datenbank {db} ({size}, wie gespeichert) nach {to} geschrieben",
    ),
    "cli.files.inconsistent": (
        "Note: these tables were dumped without a consistent snapshot (not InnoDB): {tables}",
        "Hinweis: Diese Tabellen wurden ohne konsistenten Snapshot gesichert (nicht InnoDB): {tables}",
    ),
    "cli.files.next": (
        "Next: load it into a new, empty database, check it, then switch the application over:",
        "Als Nächstes: Laden Sie die Datei in eine neue, leere Datenbank, prüfen Sie diese und stellen Sie "
        "dann die Anwendung um:",
    ),
}
