#!/usr/bin/env bash
# schoolbackup-dump: daily file + database dump of the school's web server, streamed to S3.
#
# Run by the schoolbackup SSM Run Command document (the CDK app embeds this file and its helpers
# s3put.py and dbsecret.py verbatim), as root, on Amazon Linux 2023. Needs: bash, coreutils, flock,
# curl, tar, gzip or zstd, python3 (3.9+), and for the database the AWS CLI (the secret) and
# mariadb-dump/mysqldump (+ mariadb/mysql client) or pg_dump (+ psql).
#
# What it does, in order (the step names appear in the failure line):
#   settings  validate every SB_* variable below
#   lock      flock -n on SB_LOCK_FILE: two runs never overlap; a second one says so and exits 0
#   tmpdir    sweep what killed runs left behind, create the private temp dir
#   imds      instance id (and region unless SB_REGION) via IMDSv2 only
#   slot      a slot that has its manifest.json is done: say so and stop (OK, nothing uploaded)
#   secret    DB credentials from Secrets Manager into the memory of a keeper process (dbsecret.py)
#   files     every configured path exists (a symlinked path is archived as what it points to)
#   db        DB reachable, the dump user has every privilege the dump needs, non-transactional
#             tables named (before any upload); then dump | compress | upload
#   size      the estimated files and database sizes fit in one upload each
#             (the files and db streams run at the same time; the first one to fail stops the
#             other. A signal while both run is reported at step db.)
#   attempt   claim attempt-<n>.json in the slot (the first free n): names this run's objects
#   upload    the S3 side of either stream
#   manifest  manifest.json written LAST, only when every part succeeded
#
# S3 layout (contract, see DESIGN.md):
#   s3://$SB_BUCKET/<prefix>/<instance-id>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMZ>/
#     files.tar.gz | files.tar.zst
#     db-<dbname>.sql.gz | db-<dbname>.sql.zst      (absent when SB_DB_ENGINE=none)
#     manifest.json                                  (a dump without one is a failed dump)
#     attempt-<n>.json                               (one per run that started streaming)
# The folder time comes from SB_SCHEDULED_TIME, so a retried command lands in the same slot.
# The slot is WRITE-ONCE: every object is created with If-None-Match: * (the bucket policy denies
# anything else under dumps/), so nothing stored is ever replaced. The first attempt names its
# objects as above; a later attempt of an unfinished slot (attempt n >= 2) adds ".attempt-<n>"
# before the extension (files.attempt-2.tar.gz); manifest.json lists the keys, readers take them
# from there. A slot that already has its manifest is done: a re-run says so and uploads nothing.
# Objects are SSE-KMS encrypted with SB_KMS_KEY_ID and are NOT tagged (the server role may only
# add objects). Nothing full-size ever touches the local disk: every part is streamed through
# s3put.py, its SHA-256 and byte count computed on the way.
#
# Killed runs: every process of a run stays in the script's process group, so the SSM agent's
# SIGKILL on timeout or cancel stops all of them (and with them the lock). The DB password lives
# only in the memory of the keeper (dbsecret.py) and of the tools (a memfd); nothing the run leaves
# behind holds it, and the next run sweeps its temp dir. The script stops itself at
# SB_TIME_LIMIT_SECONDS, before the document's timeout, so that its own cleanup always runs.
#
# Settings (environment, set by the SSM document from its parameters):
#   SB_BUCKET          required  bucket name
#   SB_PREFIX          optional  key prefix, default "dumps"
#   SB_PATHS           optional  space/comma separated absolute paths, default "/etc /var/www"
#   SB_DB_ENGINE       required  mysql | postgres | none   (none must be explicit)
#   SB_DB_HOST         optional  overrides "host" from the secret; one of the two is required
#   SB_DB_PORT         optional  overrides "port" from the secret; default 3306 / 5432
#   SB_DB_NAME         optional  overrides "dbname" from the secret; one of the two is required
#   SB_DB_SECRET_ARN   required unless engine none: JSON with username, password[, host, port, dbname]
#   SB_DB_CONSISTENCY  optional  mysql: single-transaction (default; InnoDB tables consistent, writes
#                                go on) | lock-tables (every table consistent, writes wait until done)
#   SB_COMPRESSION     optional  gzip (gzip -1, default) | zstd (zstd -2 -T0)
#   SB_KMS_KEY_ID      required  KMS key ARN of the bucket, for SSE-KMS
#   SB_MAX_PART_MIB    optional  largest upload part in MiB, 5-5120, default 64 (one upload holds up
#                                to 3 parts in memory; the largest object is about 7800 of them)
#   SB_SCHEDULED_TIME  optional  ISO-8601 UTC, e.g. 2026-11-27T01:00:00Z; empty = now
#   SB_TIME_LIMIT_SECONDS optional  stop (and clean up) after this many seconds; empty = no limit
#   SB_REGION          optional  else from IMDS
#   SB_LOCK_FILE       optional  default /var/lock/schoolbackup-dump.lock
#   SB_TMPDIR          optional  parent of the private temp dir, default /var/tmp
#   SB_IMDS_ENDPOINT   tests only, default http://169.254.169.254 (AWS_ENDPOINT_URL works as usual)
#   SB_MAX_PARTS       tests only, default 10000 (S3's limit of parts per upload)
#
# Output: progress lines on stdout; the last line is always one of
#   schoolbackup-dump: OK s3://<bucket>/<...>/manifest.json                      (exit 0)
#   schoolbackup-dump: SKIPPED: another run is in progress ...                   (exit 0)
#   schoolbackup-dump: FAILED at step <step>: <reason>                           (exit != 0)
# The FAILED line is also written to stderr. Secrets are never printed, never on a command line,
# never in a child's environment, never in a file. Do not add `set -x`.

set -Eeuo pipefail
umask 077

readonly ME="schoolbackup-dump"

STEP="settings"
WORK=""
CHILDREN=()  # the streams' subshells
HELPERS=()   # the credential keeper and the time-limit watchdog
DONE=0
ERR_LINE=""

log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ME" "$*"; }

# Every descendant of the given pids (from /proc; the streams' tools are grandchildren).
descendants() {
    local -A children=()
    local status pid key value
    for status in /proc/[0-9]*/status; do
        pid="${status#/proc/}" pid="${pid%/status}"
        while read -r key value _; do
            if [[ "$key" == PPid: ]]; then
                children[$value]+=" $pid"
                break
            fi
        done <"$status" 2>/dev/null || true
    done
    local -a queue=("$@")
    while [[ ${#queue[@]} -gt 0 ]]; do
        pid="${queue[0]}" queue=("${queue[@]:1}")
        for value in ${children[$pid]:-}; do
            printf '%s\n' "$value"
            queue+=("$value")
        done
    done
}

# Whether a process still runs: a zombie (exited, not yet reaped by whoever adopted it, as the
# keeper is) does not; `kill -0` would say it does.
running() {
    local stat
    # The group's 2>/dev/null also covers the failing <, which a trailing 2>/dev/null would not
    # (redirections apply left to right): a process that just exited must not add a line after the last.
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# Stop every process this run started (TERM, then KILL after ~5 s), so nothing outlives it.
stop_children() {
    local -a pids=()
    local pid i alive
    [[ ${#CHILDREN[@]} -gt 0 || ${#HELPERS[@]} -gt 0 ]] || return 0
    mapfile -t pids < <(descendants "${CHILDREN[@]}" "${HELPERS[@]}")
    pids+=("${CHILDREN[@]}" "${HELPERS[@]}")
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "${pids[@]}"; do
            running "$pid" && alive=1 && break
        done
        [[ $alive -eq 1 ]] || break
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait "${CHILDREN[@]}" "${HELPERS[@]}" 2>/dev/null || true
    CHILDREN=() HELPERS=()
}

cleanup() {
    stop_children
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        rm -rf -- "$WORK"
    fi
    WORK=""
}

# " (... is full)" when the temp dir's filesystem has (almost) no space left: then that is the cause.
disk_note() {
    local free
    free="$(stat -f -c '%a %S' -- "${SB_TMPDIR:-/var/tmp}" 2>/dev/null)" || return 0
    free=$((${free% *} * ${free#* } / 1024))
    if [[ $free -lt 64 ]]; then
        printf ' (the disk is full: %s KiB free in %s)' "$free" "${SB_TMPDIR:-/var/tmp}"
    fi
}

# Print the final failure line (stdout and stderr) after cleaning up, exit. Only the first call
# counts; signals are ignored from here on, so a second one cannot cut the cleanup or the line.
fail() {
    local reason="$1" code="${2:-1}"
    trap - ERR
    trap '' TERM INT HUP USR1
    if [[ $DONE -eq 0 ]]; then
        DONE=1
        reason+="$(disk_note)"
        cleanup
        printf '%s: FAILED at step %s: %s\n' "$ME" "$STEP" "$reason" >&2
        printf '%s: FAILED at step %s: %s\n' "$ME" "$STEP" "$reason"
    fi
    exit "$code"
}

on_signal() { fail "terminated by SIG$1" "$2"; }
on_time_limit() {
    fail "stopped after its time limit of $((SB_TIME_LIMIT_SECONDS / 60)) minutes (SB_TIME_LIMIT_SECONDS, \
a little less than the document's timeout); the dump did not finish. Raise dump.timeout_minutes in cdk.json" 124
}
on_err() { ERR_LINE="line $1: $2 (exit $3)"; }
on_exit() {
    local rc=$?
    if [[ $DONE -eq 0 ]]; then
        if [[ $rc -eq 0 ]]; then rc=1; fi
        fail "unexpected error at ${ERR_LINE:-exit $rc}" "$rc"
    fi
    cleanup
}
trap 'on_err "$LINENO" "$BASH_COMMAND" "$?"' ERR
trap on_exit EXIT
trap 'on_signal TERM 143' TERM
trap 'on_signal INT 130' INT
trap 'on_signal HUP 129' HUP
trap on_time_limit USR1

# Last non-empty line of a (stderr capture) file, shortened, for the failure reason.
last_err() {
    local f="$1" line=""
    if [[ -s "$f" ]]; then
        # The last FATAL/ERROR line says what went wrong (libpq follows it with hints such as
        # "password retrieved from file"); otherwise the last non-empty line.
        line="$(grep -E '(FATAL|ERROR|[Ee]rror):' -- "$f" | tail -n 1 || true)"
        [[ -n "$line" ]] || line="$(grep -v '^[[:space:]]*$' -- "$f" | tail -n 1 || true)"
    fi
    line="${line//$'\r'/}"
    printf '%s' "${line:0:300}"
}

# What tar could not read, file by file (its last line only says "Exiting with failure status").
tar_errors() {
    local f="$1" lines
    lines="$(grep -E 'Cannot |Permission denied|No such file' -- "$f" 2>/dev/null | head -n 3 || true)"
    [[ -n "$lines" ]] || lines="$(last_err "$f")"
    lines="${lines//$'\n'/; }"
    printf '%s' "${lines:0:400}"
}

# ---------------------------------------------------------------- settings
SB_BUCKET="${SB_BUCKET:-}"
SB_PREFIX="${SB_PREFIX:-dumps}"
SB_PATHS="${SB_PATHS:-/etc /var/www}"
SB_DB_ENGINE="${SB_DB_ENGINE:-}"
SB_DB_HOST="${SB_DB_HOST:-}"
SB_DB_PORT="${SB_DB_PORT:-}"
SB_DB_NAME="${SB_DB_NAME:-}"
SB_DB_SECRET_ARN="${SB_DB_SECRET_ARN:-}"
SB_DB_CONSISTENCY="${SB_DB_CONSISTENCY:-single-transaction}"
SB_COMPRESSION="${SB_COMPRESSION:-gzip}"
SB_KMS_KEY_ID="${SB_KMS_KEY_ID:-}"
SB_MAX_PART_MIB="${SB_MAX_PART_MIB:-64}"
SB_MAX_PARTS="${SB_MAX_PARTS:-10000}"
SB_SCHEDULED_TIME="${SB_SCHEDULED_TIME:-}"
SB_TIME_LIMIT_SECONDS="${SB_TIME_LIMIT_SECONDS:-}"
SB_REGION="${SB_REGION:-}"
SB_IMDS_ENDPOINT="${SB_IMDS_ENDPOINT:-http://169.254.169.254}"
SB_LOCK_FILE="${SB_LOCK_FILE:-/var/lock/schoolbackup-dump.lock}"
SB_TMPDIR="${SB_TMPDIR:-/var/tmp}"

# A whole number in [min, max] (leading zeros allowed: "08" is 8, not a bash octal error).
number_in() {
    [[ "$1" =~ ^[0-9]{1,10}$ ]] && (( 10#$1 >= $2 && 10#$1 <= $3 ))
}

[[ "$SB_BUCKET" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] \
    || fail "SB_BUCKET must be an S3 bucket name, got '${SB_BUCKET}'"
[[ "$SB_PREFIX" =~ ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$ ]] \
    || fail "SB_PREFIX must be a key prefix without leading/trailing '/', got '${SB_PREFIX}'"
case "$SB_DB_ENGINE" in
    mysql | postgres | none) ;;
    "") fail "SB_DB_ENGINE is required: mysql, postgres or none (none must be explicit)" ;;
    *) fail "SB_DB_ENGINE must be mysql, postgres or none, got '${SB_DB_ENGINE}'" ;;
esac
case "$SB_COMPRESSION" in
    gzip) EXT="gz" ;;
    zstd) EXT="zst" ;;
    *) fail "SB_COMPRESSION must be gzip or zstd, got '${SB_COMPRESSION}'" ;;
esac
case "$SB_DB_CONSISTENCY" in
    single-transaction | lock-tables) ;;
    *) fail "SB_DB_CONSISTENCY must be single-transaction or lock-tables, got '${SB_DB_CONSISTENCY}'" ;;
esac
[[ "$SB_KMS_KEY_ID" =~ ^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$ ]] \
    || fail "SB_KMS_KEY_ID must be the KMS key ARN of the bucket, got '${SB_KMS_KEY_ID}'"
number_in "$SB_MAX_PART_MIB" 5 5120 \
    || fail "SB_MAX_PART_MIB must be a whole number of MiB from 5 to 5120, got '${SB_MAX_PART_MIB}'"
SB_MAX_PART_MIB=$((10#$SB_MAX_PART_MIB))
number_in "$SB_MAX_PARTS" 1 10000 || fail "SB_MAX_PARTS must be from 1 to 10000, got '${SB_MAX_PARTS}'"
SB_MAX_PARTS=$((10#$SB_MAX_PARTS))
if [[ -n "$SB_TIME_LIMIT_SECONDS" ]]; then
    number_in "$SB_TIME_LIMIT_SECONDS" 1 604800 \
        || fail "SB_TIME_LIMIT_SECONDS must be a number of seconds from 1 to 604800, got '${SB_TIME_LIMIT_SECONDS}'"
    SB_TIME_LIMIT_SECONDS=$((10#$SB_TIME_LIMIT_SECONDS))
fi
if [[ -n "$SB_REGION" && ! "$SB_REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]; then
    fail "SB_REGION must be a region name like eu-central-2, got '${SB_REGION}'"
fi
[[ "$SB_IMDS_ENDPOINT" =~ ^https?://[^/[:space:]]+$ ]] \
    || fail "SB_IMDS_ENDPOINT must be http(s)://host[:port], got '${SB_IMDS_ENDPOINT}'"
[[ "$SB_LOCK_FILE" == /* && "$SB_LOCK_FILE" != */ ]] \
    || fail "SB_LOCK_FILE must be an absolute file path, got '${SB_LOCK_FILE}'"
[[ -d "$(dirname -- "$SB_LOCK_FILE")" ]] \
    || fail "SB_LOCK_FILE directory does not exist: '${SB_LOCK_FILE%/*}'"
[[ "$SB_TMPDIR" == /* && -d "$SB_TMPDIR" && -w "$SB_TMPDIR" ]] \
    || fail "SB_TMPDIR must be an existing writable absolute directory, got '${SB_TMPDIR}'"

if [[ "$SB_DB_ENGINE" == none ]]; then
    for v in SB_DB_SECRET_ARN SB_DB_HOST SB_DB_NAME SB_DB_PORT; do
        [[ -z "${!v}" ]] || fail "$v is set but SB_DB_ENGINE=none; set SB_DB_ENGINE or clear $v"
    done
else
    [[ "$SB_DB_SECRET_ARN" =~ ^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$ ]] \
        || fail "SB_DB_SECRET_ARN must be a Secrets Manager secret ARN, got '${SB_DB_SECRET_ARN}'"
    if [[ -n "$SB_DB_HOST" && ! "$SB_DB_HOST" =~ ^[A-Za-z0-9._:-]+$ ]]; then
        fail "SB_DB_HOST must be a host name or IP address, got '${SB_DB_HOST}'"
    fi
    if [[ -n "$SB_DB_PORT" ]]; then
        number_in "$SB_DB_PORT" 1 65535 || fail "SB_DB_PORT must be a TCP port 1-65535, got '${SB_DB_PORT}'"
        SB_DB_PORT=$((10#$SB_DB_PORT))
    fi
    if [[ -n "$SB_DB_NAME" && ! "$SB_DB_NAME" =~ ^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$ ]]; then
        fail "SB_DB_NAME must be a plain database name ([A-Za-z0-9_\$-], max 63), got '${SB_DB_NAME}'"
    fi
fi

# Paths: space or comma separated, absolute, no '..', no duplicates of '/' tricks.
PATHS=()
IFS=$' \t\n,' read -r -a _raw_paths <<<"$SB_PATHS"
for p in "${_raw_paths[@]}"; do
    [[ -n "$p" ]] || continue
    [[ "$p" == /* ]] || fail "SB_PATHS entries must be absolute paths, got '${p}'"
    [[ "/$p/" != */../* && "/$p/" != */./* ]] || fail "SB_PATHS entries must not contain '.' or '..', got '${p}'"
    PATHS+=("$p")
done
[[ ${#PATHS[@]} -gt 0 ]] || fail "SB_PATHS must name at least one absolute path"

if [[ -n "$SB_SCHEDULED_TIME" ]]; then
    [[ "$SB_SCHEDULED_TIME" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?Z$ ]] \
        || fail "SB_SCHEDULED_TIME must be ISO-8601 UTC like 2026-11-27T01:00:00Z, got '${SB_SCHEDULED_TIME}'"
    EPOCH="$(date -u -d "${SB_SCHEDULED_TIME%Z} UTC" +%s 2>/dev/null)" \
        || fail "SB_SCHEDULED_TIME is not a valid date/time, got '${SB_SCHEDULED_TIME}'"
else
    EPOCH="$(date -u +%s)"
fi
STARTED_AT="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# The clients read no setting from the caller's environment or home: only what this run passes.
for v in $(compgen -e); do
    case "$v" in
        PG* | MYSQL_* | LIBMYSQL_* | MARIADB_*) unset "$v" ;;
    esac
done

# Tools (AL2023 has all of these; the DB client comes with the mariadb105/postgresql15 packages).
for t in python3 curl tar flock "$SB_COMPRESSION"; do
    command -v "$t" >/dev/null || fail "required command '$t' not found in PATH"
done
if [[ "$SB_DB_ENGINE" != none ]]; then
    command -v aws >/dev/null || fail "required command 'aws' (AWS CLI, for the DB secret) not found in PATH"
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || fail "python3 is $(python3 -V 2>&1); the dump's helpers need Python 3.9 or newer"
# The helpers: the SSM document sets SB_S3PUT_PY and SB_DBSECRET_PY to their source; run from a
# checkout, the files next to this script are used.
_here="$(dirname -- "${BASH_SOURCE[0]}")"
if [[ -z "${SB_S3PUT_PY:-}" ]]; then
    SB_S3PUT_PY="$(cat -- "$_here/s3put.py" 2>/dev/null)" || fail "cannot read the S3 client $_here/s3put.py"
fi
if [[ -z "${SB_DBSECRET_PY:-}" ]]; then
    SB_DBSECRET_PY="$(cat -- "$_here/dbsecret.py" 2>/dev/null)" || fail "cannot read $_here/dbsecret.py"
fi
# s3 <command> <key> [options...]: the write-once S3 client (exit 4: the object exists already).
s3() {
    local cmd="$1" key="$2"
    shift 2
    python3 -c "$SB_S3PUT_PY" "$cmd" --bucket "$SB_BUCKET" --key "$key" --region "$REGION" "$@"
}
DUMP_TOOL=""
CLIENT_TOOL=""
case "$SB_DB_ENGINE" in
    mysql)
        DUMP_TOOL="$(command -v mariadb-dump || command -v mysqldump || true)"
        CLIENT_TOOL="$(command -v mariadb || command -v mysql || true)"
        [[ -n "$DUMP_TOOL" ]] || fail "SB_DB_ENGINE=mysql but neither mariadb-dump nor mysqldump is installed"
        [[ -n "$CLIENT_TOOL" ]] || fail "SB_DB_ENGINE=mysql but neither the mariadb nor the mysql client is installed"
        ;;
    postgres)
        DUMP_TOOL="$(command -v pg_dump || true)"
        CLIENT_TOOL="$(command -v psql || true)"
        [[ -n "$DUMP_TOOL" ]] || fail "SB_DB_ENGINE=postgres but pg_dump is not installed"
        [[ -n "$CLIENT_TOOL" ]] || fail "SB_DB_ENGINE=postgres but psql is not installed"
        ;;
esac

# ---------------------------------------------------------------- lock
STEP="lock"
# fd 9 stays open for the whole run and in every process of it: the lock ends with the last of them.
exec 9>>"$SB_LOCK_FILE" || fail "cannot open lock file $SB_LOCK_FILE"
if ! flock -n 9; then
    # A doubled invocation (a retried schedule, a manual run): the running one does the work. Exit 0,
    # so the dump-failed alarm stays quiet; a run that hangs ends at its own time limit and alarms.
    DONE=1
    printf '%s: SKIPPED: another %s run is in progress (lock %s is held); this one does nothing\n' \
        "$ME" "$ME" "$SB_LOCK_FILE"
    exit 0
fi

# ---------------------------------------------------------------- tmpdir
STEP="tmpdir"
# Holding the lock, no other run is alive: what is left in the temp dir is from a killed run.
for leftover in "$SB_TMPDIR"/schoolbackup-dump.*; do
    if [[ -d "$leftover" && -O "$leftover" ]]; then
        rm -rf -- "$leftover" && log "removed what a killed run left behind: $leftover"
    fi
done
WORK="$(mktemp -d "$SB_TMPDIR/schoolbackup-dump.XXXXXXXX" 2>&1)" \
    || { _err="$WORK" WORK=""; fail "cannot create a private temp dir in $SB_TMPDIR: ${_err##*: }"; }
chmod 700 "$WORK"
printf 'probe\n' >"$WORK/.probe" 2>/dev/null || fail "cannot write into the temp dir $WORK"
if [[ -n "$SB_TIME_LIMIT_SECONDS" ]]; then
    (
        trap - ERR EXIT TERM INT HUP USR1
        sleep "$SB_TIME_LIMIT_SECONDS" && kill -USR1 $$
    ) &
    HELPERS+=("$!")
fi

# ---------------------------------------------------------------- imds (v2 only)
STEP="imds"
# The session token stays in this shell: curl reads the header from stdin, not from its command line.
IMDS_TOKEN="$(curl -sS -f --max-time 5 --retry 3 --retry-delay 1 -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$SB_IMDS_ENDPOINT/latest/api/token" 2>"$WORK/imds.err")" \
    || fail "no IMDSv2 token from $SB_IMDS_ENDPOINT: $(last_err "$WORK/imds.err")"
imds_get() {
    printf 'X-aws-ec2-metadata-token: %s\n' "${IMDS_TOKEN//[$'\r\n']/}" \
        | curl -sS -f --max-time 5 --retry 3 --retry-delay 1 -H @- "$SB_IMDS_ENDPOINT/latest/meta-data/$1" \
            2>>"$WORK/imds.err"
}
INSTANCE_ID="$(imds_get instance-id)" || fail "cannot read instance-id from IMDSv2: $(last_err "$WORK/imds.err")"
[[ "$INSTANCE_ID" =~ ^i-[0-9a-f]{8,17}$ ]] || fail "IMDS returned an unexpected instance id '${INSTANCE_ID:0:40}'"
if [[ -n "$SB_REGION" ]]; then
    REGION="$SB_REGION"
else
    REGION="$(imds_get placement/region)" || fail "cannot read placement/region from IMDSv2: $(last_err "$WORK/imds.err")"
    [[ "$REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || fail "IMDS returned an unexpected region '${REGION:0:40}'"
fi
unset IMDS_TOKEN

FOLDER="$(date -u -d "@$EPOCH" +%Y/%m/%d/%Y%m%dT%H%MZ)"
BASE="$SB_PREFIX/$INSTANCE_ID/$FOLDER"
# The schoolbackup tags as S3 user metadata (x-amz-meta-*): object *tags* would need s3:PutObjectTagging,
# which the server role deliberately does not have (it may only add objects).
OBJECT_METADATA="managedby=schoolbackup,backupjob=dump-daily,backupsource=$INSTANCE_ID"
log "instance $INSTANCE_ID, region $REGION, target s3://$SB_BUCKET/$BASE/"
MANIFEST_KEY="$BASE/manifest.json"

# ---------------------------------------------------------------- slot (done already?)
STEP="slot"
set +e
s3 exists "$MANIFEST_KEY" 2>"$WORK/slot.err"
rc_slot=$?
set -e
if [[ $rc_slot -eq 0 ]]; then
    log "this slot is complete already (s3://$SB_BUCKET/$MANIFEST_KEY exists); nothing to do, nothing uploaded"
    DONE=1
    cleanup
    printf '%s: OK s3://%s/%s\n' "$ME" "$SB_BUCKET" "$MANIFEST_KEY"
    exit 0
elif [[ $rc_slot -ne 3 ]]; then
    fail "cannot check whether s3://$SB_BUCKET/$MANIFEST_KEY exists: $(last_err "$WORK/slot.err")"
fi

# ---------------------------------------------------------------- secret
DB_HOST="" DB_PORT="" DB_NAME="" DB_USER="" CREDENTIALS="$WORK/db-credentials"
if [[ "$SB_DB_ENGINE" != none ]]; then
    STEP="secret"
    # aws -> pipe -> dbsecret serve (stdin) -> the keeper's memory, handed to the tools through a FIFO.
    # It is never in argv, never in a shell variable, never in the environment, never in a file.
    set +e
    aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SB_DB_SECRET_ARN" \
        --query SecretString --output json 2>"$WORK/secret.err" \
        | python3 -c "$SB_DBSECRET_PY" serve "$SB_DB_ENGINE" "$CREDENTIALS" "$SB_DB_HOST" "$SB_DB_PORT" \
            "$SB_DB_NAME" "${SB_TIME_LIMIT_SECONDS:-86400}" >"$WORK/db.conf" 2>"$WORK/secret-parse.err"
    ps_secret=("${PIPESTATUS[@]}")
    set -e
    if [[ ${ps_secret[0]} -ne 0 ]]; then
        fail "cannot read secret $SB_DB_SECRET_ARN: $(last_err "$WORK/secret.err")"
    elif [[ ${ps_secret[1]} -ne 0 ]]; then
        fail "secret $SB_DB_SECRET_ARN unusable: $(last_err "$WORK/secret-parse.err")"
    fi
    { read -r DB_HOST && read -r DB_PORT && read -r DB_NAME && read -r DB_USER && read -r KEEPER; } \
        <"$WORK/db.conf" || fail "internal: incomplete connection settings"
    HELPERS+=("$KEEPER")
    rm -f -- "$WORK/db.conf"
    log "database $SB_DB_ENGINE $DB_NAME on $DB_HOST:$DB_PORT as $DB_USER (password from the secret)"
fi

# db_tool <tool> [args...]: the tool with the credentials from the keeper (MySQL: as its only option
# file, --defaults-file; PostgreSQL: PGPASSFILE), in memory.
db_tool() { python3 -c "$SB_DBSECRET_PY" exec "$SB_DB_ENGINE" "$CREDENTIALS" "$@"; }
DUMP_CMD=() SQL_CMD=()
if [[ "$SB_DB_ENGINE" == mysql ]]; then
    common=("--host=$DB_HOST" "--port=$DB_PORT" "--protocol=TCP")
    DUMP_CMD=(db_tool "$DUMP_TOOL" "${common[@]}" --routines --events --triggers --hex-blob
        --no-tablespaces --default-character-set=utf8mb4 --quick)
    if [[ "$SB_DB_CONSISTENCY" == lock-tables ]]; then
        DUMP_CMD+=(--lock-tables)
    else
        DUMP_CMD+=(--single-transaction)
    fi
    # MySQL 8's own mysqldump would otherwise write SET @@GLOBAL.GTID_PURGED on GTID servers (RDS).
    if "$DUMP_TOOL" --no-defaults --help 2>/dev/null | grep -q -- '--set-gtid-purged'; then
        DUMP_CMD+=(--set-gtid-purged=OFF)
    fi
    DUMP_CMD+=("$DB_NAME")
    SQL_CMD=(db_tool "$CLIENT_TOOL" "${common[@]}" --connect-timeout=10 --batch --skip-column-names "$DB_NAME")
elif [[ "$SB_DB_ENGINE" == postgres ]]; then
    export PGCONNECT_TIMEOUT=10
    DUMP_CMD=(db_tool "$DUMP_TOOL" --no-password --format=plain --host="$DB_HOST" --port="$DB_PORT"
        --username="$DB_USER" --dbname="$DB_NAME")
    SQL_CMD=(db_tool "$CLIENT_TOOL" --no-password --no-psqlrc --quiet --tuples-only --no-align
        --field-separator=$'\t' --set=ON_ERROR_STOP=1 --host="$DB_HOST" --port="$DB_PORT"
        --username="$DB_USER" --dbname="$DB_NAME")
fi

# ---------------------------------------------------------------- preflight (before any upload)
STEP="files"
TAR_MEMBERS=() TAR_RENAMES=() SIZE_PATHS=()
# A basic regular expression that matches $1 literally (paths allow only [A-Za-z0-9_.@+=:/-]).
bre_literal() { printf '%s' "${1//./\\.}"; }
for p in "${PATHS[@]}"; do
    [[ -e "$p" ]] || fail "configured path $p does not exist (SB_PATHS)"
    p="${p%/}"
    [[ -n "$p" ]] || p="/"
    member="${p#/}"
    [[ -n "$member" ]] || member="."
    if [[ -L "$p" ]]; then
        # /var/www -> /srv/www: archive the files it points to, under the configured name (tar alone
        # would store the link: 168 bytes of nothing). Links inside the tree stay links.
        target="$(realpath -e -- "$p" 2>/dev/null)" || fail "configured path $p is a symlink to nothing"
        target_member="${target#/}"
        [[ -n "$target_member" ]] || fail "configured path $p is a symlink to /; list / itself instead"
        log "$p is a symlink to $target: archiving the files of $target as $member/"
        TAR_MEMBERS+=("$target_member")
        TAR_RENAMES+=("--transform=s#^$(bre_literal "$target_member")\\(/\\|\$\\)#$member\\1#S")
        SIZE_PATHS+=("$target")
    else
        TAR_MEMBERS+=("$member")
        SIZE_PATHS+=("$p")
    fi
done

DB_FLAVOR="" DB_SIZE=0 NONTX_TABLES=()
if [[ "$SB_DB_ENGINE" == mysql ]]; then
    STEP="db"
    # One round trip: the server, the dump user's privileges, non-InnoDB tables, the data size.
    # (DB_NAME is a plain name: [A-Za-z0-9_$-].)
    printf '%s\n' \
        "SELECT 'flavor', IF(VERSION() LIKE '%MariaDB%', 'mariadb', 'mysql');" \
        "SELECT 'user', CURRENT_USER();" \
        "SET @g = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''');" \
        "SELECT 'global', PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = @g;" \
        "SELECT 'schema', PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = @g AND REPLACE(TABLE_SCHEMA, '\\\\_', '_') = '$DB_NAME';" \
        "SELECT 'proc', PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = @g AND TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'proc';" \
        "SELECT 'nontx', TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$DB_NAME' AND TABLE_TYPE = 'BASE TABLE' AND ENGINE IS NOT NULL AND ENGINE <> 'InnoDB' ORDER BY TABLE_NAME;" \
        "SELECT 'size', COALESCE(SUM(DATA_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$DB_NAME';" \
        >"$WORK/preflight.sql"
    "${SQL_CMD[@]}" <"$WORK/preflight.sql" >"$WORK/preflight.out" 2>"$WORK/check.err" \
        || fail "cannot connect to mysql database $DB_NAME on $DB_HOST:$DB_PORT: $(last_err "$WORK/check.err")"
    declare -A HAVE=()
    DB_ACCOUNT=""
    while IFS=$'\t' read -r tag a b; do
        case "$tag" in
            flavor) DB_FLAVOR="$a" ;;
            user) DB_ACCOUNT="$a" ;;
            global) HAVE["global:$a"]=1 HAVE["$a"]=1 ;;
            schema) HAVE["$a"]=1 ;;
            proc) HAVE["proc:$a"]=1 ;;
            nontx) NONTX_TABLES+=("$a") && log "warning: table $DB_NAME.$a uses $b, which --single-transaction does not cover: it is dumped at a slightly different moment than the InnoDB tables" ;;
            size) DB_SIZE="$a" ;;
        esac
    done <"$WORK/preflight.out"
    need=(SELECT "SHOW VIEW" TRIGGER EVENT)
    [[ "$SB_DB_CONSISTENCY" != lock-tables ]] || need+=("LOCK TABLES")
    missing=()
    for privilege in "${need[@]}"; do
        [[ -n "${HAVE[$privilege]:-}" ]] || missing+=("$privilege")
    done
    # Procedures and functions: MySQL 8 needs SHOW_ROUTINE (or global SELECT); MariaDB SELECT on
    # mysql.proc (or SHOW CREATE ROUTINE, or global SELECT). Without, mysqldump silently skips them.
    if [[ -z "${HAVE[global:SELECT]:-}${HAVE[global:SHOW_ROUTINE]:-}${HAVE[proc:SELECT]:-}${HAVE[SHOW CREATE ROUTINE]:-}" ]]; then
        if [[ "$DB_FLAVOR" == mariadb ]]; then missing+=("SELECT ON mysql.proc"); else missing+=("SHOW_ROUTINE"); fi
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        grant="${missing[*]}"
        fail "the dump user $DB_ACCOUNT lacks ${grant// /, } on $DB_NAME: without it the dump would silently miss triggers, views, events or routines. As the master user run e.g. GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON $DB_NAME.* TO the dump user (README, 'The read-only dump user')"
    fi
    if [[ "$SB_DB_CONSISTENCY" == lock-tables ]]; then
        NONTX_TABLES=()  # every table is read under a lock: consistent, at the price of waiting writers
    fi
elif [[ "$SB_DB_ENGINE" == postgres ]]; then
    STEP="db"
    printf '%s\n' \
        "SELECT 'size', pg_database_size(current_database());" \
        "SELECT 'schema', nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' AND NOT has_schema_privilege(oid, 'USAGE');" \
        "SELECT 'table', c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'S') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND NOT has_table_privilege(c.oid, 'SELECT');" \
        >"$WORK/preflight.sql"
    "${SQL_CMD[@]}" <"$WORK/preflight.sql" >"$WORK/preflight.out" 2>"$WORK/check.err" \
        || fail "cannot connect to postgres database $DB_NAME on $DB_HOST:$DB_PORT: $(last_err "$WORK/check.err")"
    denied=()
    while IFS=$'\t' read -r tag a; do
        case "$tag" in
            size) DB_SIZE="$a" ;;
            schema) denied+=("USAGE on schema $a") ;;
            table) denied+=("SELECT on $a") ;;
        esac
    done <"$WORK/preflight.out"
    if [[ ${#denied[@]} -gt 0 ]]; then
        list="${denied[*]:0:5}"
        fail "the dump user $DB_USER lacks ${#denied[@]} privilege(s) pg_dump needs, e.g. $list. As the owner run GRANT pg_read_all_data TO $DB_USER (PostgreSQL 14+; README, 'The read-only dump user')"
    fi
fi

STEP="size"
CAPACITY="$(python3 -c "$SB_S3PUT_PY" capacity --max-part-mib "$SB_MAX_PART_MIB" --max-parts "$SB_MAX_PARTS" 2>&1)" \
    || fail "internal: cannot compute the upload capacity: $CAPACITY"
FILES_SIZE="$(du -s -b -c -- "${SIZE_PATHS[@]}" 2>/dev/null | tail -n 1 | cut -f1 || true)"
human() { awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u); i = 1; while (b >= 1024 && i < 5) { b /= 1024; i++ } printf "%.1f %s", b, u[i] }'; }
for estimate in "files are:${FILES_SIZE:-0}" "database $DB_NAME is:${DB_SIZE:-0}"; do
    what="${estimate%:*}" bytes="${estimate##*:}"
    [[ "$bytes" =~ ^[0-9]+$ ]] || continue
    if ((bytes > CAPACITY)); then
        fail "the $what about $(human "$bytes") before compression, more than one upload can take with parts of at most $SB_MAX_PART_MIB MiB ($(human "$CAPACITY") in $SB_MAX_PARTS parts). Raise dump.max_part_mib in cdk.json (an upload keeps up to 3 parts of that size in memory) and make deploy"
    fi
done

# ---------------------------------------------------------------- streaming
compress() {
    case "$SB_COMPRESSION" in
        gzip) gzip -c -1 ;;
        # -2: on SQL/HTML text ~7 % larger than -3 for ~30 % less CPU (the dump already takes more
        # than one core of a 2-core server); -T0 uses every core that is left.
        zstd) zstd -q -c -2 -T0 ;;
    esac
}

produce_files() {
    tar --create --file=- --directory=/ --exclude="${WORK#/}" "${TAR_RENAMES[@]}" -- "${TAR_MEMBERS[@]}"
}
# The SQL as any server restores it: without DEFINER clauses (a restore as the RDS master user may
# not create objects for another user) and, from a MySQL server, without the MariaDB client's
# sandbox line that MySQL's client rejects. Data (INSERT lines) is never touched.
sql_portable() {
    if [[ "$DB_FLAVOR" == mysql ]]; then
        sed -E '1{/^\/\*M!999999\\- enable the sandbox mode \*\/ ?$/d};/^INSERT /!s/DEFINER=`[^`]*`@`[^`]*` ?//g'
    else
        sed -E '/^INSERT /!s/DEFINER=`[^`]*`@`[^`]*` ?//g'
    fi
}
produce_db() {
    if [[ "$SB_DB_ENGINE" == mysql ]]; then
        "${DUMP_CMD[@]}" </dev/null | sql_portable
    else
        "${DUMP_CMD[@]}" </dev/null
    fi
}

declare -A PART_PID=() PART_KEY=() PART_OK=() PART_ENGINE=() PART_T0=() PART_DONE=()
declare -A RECORD=()  # kind -> kind|engine|key|bytes|sha256
PARTS=()

# start_part <kind> <producer function> <key> <producer ok exit codes, e.g. "0 1"> [engine]
# Runs producer | compress | s3put upload in the background (in this script's process group: a
# SIGKILL to the group stops it too). s3put hashes and counts the stream, uploads it write-once
# (multipart for anything above one part) and aborts a multipart upload that fails or is stopped.
start_part() {
    local kind="$1" producer="$2" key="$3"
    local meta="$WORK/$kind.meta" perr="$WORK/$kind.err" uerr="$WORK/$kind.upload.err" st="$WORK/$kind.status"
    PARTS+=("$kind")
    PART_KEY[$kind]="$key" PART_OK[$kind]="$4" PART_ENGINE[$kind]="${5:-}" PART_T0[$kind]=$SECONDS
    log "streaming $kind to s3://$SB_BUCKET/$key"
    (
        trap - ERR EXIT TERM INT HUP USR1
        set +e
        "$producer" 2>"$perr" | compress \
            | s3 upload "$key" --meta "$meta" --sse-kms-key-id "$SB_KMS_KEY_ID" --metadata "$OBJECT_METADATA" \
                --max-part-mib "$SB_MAX_PART_MIB" --max-parts "$SB_MAX_PARTS" 2>"$uerr"
        echo "$producer ${PIPESTATUS[*]}" >"$st.tmp" && mv -f -- "$st.tmp" "$st"
    ) &
    PART_PID[$kind]=$!
    CHILDREN+=("$!")
}

# check_part <kind>: judge a finished stream from its PIPESTATUS record; fail() names its step.
check_part() {
    local kind="$1" producer s_prod s_comp s_up sha bytes
    STEP="$kind"
    read -r producer s_prod s_comp s_up <"$WORK/$kind.status" || fail "internal: no pipeline status for $kind"
    # A refused upload is the cause when it failed: the producer and compressor then only died of
    # the closed pipe (EPIPE). A producer that failed while the upload went through is reported as such.
    if [[ "$s_up" -ne 0 ]]; then
        STEP="upload"
        fail "upload to s3://$SB_BUCKET/${PART_KEY[$kind]} exited $s_up: $(last_err "$WORK/$kind.upload.err")"
    fi
    if [[ " ${PART_OK[$kind]} " != *" $s_prod "* ]]; then
        if [[ "$kind" == files ]]; then
            fail "tar exited $s_prod: $(tar_errors "$WORK/$kind.err")"
        fi
        fail "$producer exited $s_prod: $(last_err "$WORK/$kind.err")"
    fi
    if [[ "$s_prod" -ne 0 ]]; then
        log "warning: tar exited $s_prod (a file changed while it was read); archive kept: $(last_err "$WORK/$kind.err")"
    fi
    [[ "$s_comp" -eq 0 ]] || fail "$SB_COMPRESSION exited $s_comp"
    read -r sha bytes <"$WORK/$kind.meta" || fail "internal: no checksum for $kind"
    [[ "$sha" =~ ^[0-9a-f]{64}$ && "$bytes" =~ ^[0-9]+$ ]] || fail "internal: bad checksum record for $kind"
    RECORD[$kind]="$kind|${PART_ENGINE[$kind]}|${PART_KEY[$kind]}|$bytes|$sha"
    log "stored $kind: $bytes bytes in $((SECONDS - PART_T0[$kind])) s, sha256 $sha"
}

# Wait for every started part; judge each as soon as it ends, so a failing part stops the others
# at once (fail -> cleanup -> stop_children) instead of after the longest stream.
wait_parts() {
    local kind
    local -a pending pids
    while true; do
        pending=() pids=()
        for kind in "${PARTS[@]}"; do
            [[ -z "${PART_DONE[$kind]:-}" ]] || continue
            if [[ -e "$WORK/$kind.status" ]]; then
                wait "${PART_PID[$kind]}" 2>/dev/null || true
                PART_DONE[$kind]=1
                check_part "$kind"
            elif ! kill -0 "${PART_PID[$kind]}" 2>/dev/null && [[ ! -e "$WORK/$kind.status" ]]; then
                STEP="$kind"
                fail "internal: the $kind stream ended without a pipeline status"
            else
                pending+=("$kind") pids+=("${PART_PID[$kind]}")
            fi
        done
        [[ ${#pending[@]} -gt 0 ]] || break
        # Reported step while streams run: db while the database stream runs, else files.
        STEP="${pending[-1]}"
        wait -n "${pids[@]}" 2>/dev/null || true
    done
    CHILDREN=()
}

# ---------------------------------------------------------------- attempt
# The first free attempt-<n>.json of the slot names this run's objects (write-once: taking a number
# is a conditional create, so two runs never get the same one).
STEP="attempt"
ATTEMPT=0
for ((n = 1; n <= 50; n++)); do
    set +e
    printf '{"attempt": %d, "source": "%s", "started_at": "%s"}\n' "$n" "$INSTANCE_ID" "$STARTED_AT" \
        | s3 put "$BASE/attempt-$n.json" --content-type application/json --sse-kms-key-id "$SB_KMS_KEY_ID" \
            --metadata "$OBJECT_METADATA" 2>"$WORK/attempt.err"
    rc_attempt=$?
    set -e
    if [[ $rc_attempt -eq 0 ]]; then
        ATTEMPT=$n
        break
    elif [[ $rc_attempt -ne 4 ]]; then
        STEP="upload"
        fail "cannot write s3://$SB_BUCKET/$BASE/attempt-$n.json: $(last_err "$WORK/attempt.err")"
    fi
done
[[ $ATTEMPT -gt 0 ]] || fail "the slot s3://$SB_BUCKET/$BASE/ has had 50 attempts already; not starting another"
SUFFIX=""
[[ $ATTEMPT -eq 1 ]] || SUFFIX=".attempt-$ATTEMPT"
[[ $ATTEMPT -eq 1 ]] || log "attempt $ATTEMPT of this slot: its objects are named *$SUFFIX.*"

STEP="files"
start_part files produce_files "$BASE/files$SUFFIX.tar.$EXT" "0 1"
if [[ "$SB_DB_ENGINE" != none ]]; then
    STEP="db"
    start_part db produce_db "$BASE/db-$DB_NAME$SUFFIX.sql.$EXT" "0" "$SB_DB_ENGINE"
fi
wait_parts
OBJECTS=()  # lines: kind|engine|key|bytes|sha256, in a fixed order
for kind in "${PARTS[@]}"; do
    OBJECTS+=("${RECORD[$kind]}")
done

# ---------------------------------------------------------------- manifest (last)
STEP="manifest"
FINISHED_AT="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# shellcheck disable=SC2016
printf '%s\n' "${OBJECTS[@]}" | python3 -c '
import json, sys
source, started, finished, out, *inconsistent = sys.argv[1:]
objects = []
for line in sys.stdin.read().splitlines():
    kind, engine, key, size, sha = line.split("|")
    o = {"key": key, "kind": kind}
    if engine:
        o["engine"] = engine
    o["bytes"] = int(size)
    o["sha256"] = sha
    objects.append(o)
m = {"version": 1, "source": source, "started_at": started, "finished_at": finished,
     "status": "ok", "objects": objects}
if inconsistent:
    m["inconsistent_tables"] = inconsistent
with open(out, "w") as f:
    json.dump(m, f, indent=2)
    f.write("\n")
' "$INSTANCE_ID" "$STARTED_AT" "$FINISHED_AT" "$WORK/manifest.json" "${NONTX_TABLES[@]}" \
    || fail "cannot build manifest.json"
set +e
s3 put "$MANIFEST_KEY" --content-type application/json --sse-kms-key-id "$SB_KMS_KEY_ID" \
    --metadata "$OBJECT_METADATA" <"$WORK/manifest.json" 2>"$WORK/manifest.err"
rc_manifest=$?
set -e
if [[ $rc_manifest -eq 4 ]]; then
    # Another run finished this slot while we streamed: the slot is done, ours are unlisted extras.
    log "another run completed this slot first; its manifest stands, this run's objects are not listed in it"
elif [[ $rc_manifest -ne 0 ]]; then
    fail "cannot upload s3://$SB_BUCKET/$MANIFEST_KEY: $(last_err "$WORK/manifest.err")"
fi

DONE=1
cleanup
printf '%s: OK s3://%s/%s\n' "$ME" "$SB_BUCKET" "$MANIFEST_KEY"
