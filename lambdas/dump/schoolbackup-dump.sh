#!/usr/bin/env bash
# schoolbackup-dump: daily file + database dump of the school's web server, streamed to S3.
#
# Run by the schoolbackup SSM Run Command document (the CDK app embeds this file and its S3 client
# s3put.py verbatim), as root, on Amazon Linux 2023. Needs: bash, coreutils, flock, curl, tar, gzip or
# zstd, python3 (3.9+), and for the database the AWS CLI (the secret) and mariadb-dump/mysqldump
# (+ mariadb/mysql client) or pg_dump (+ psql).
#
# What it does, in order (the step names appear in the failure line):
#   settings  validate every SB_* variable below
#   lock      flock -n on SB_LOCK_FILE: two runs never overlap
#   imds      instance id (and region unless SB_REGION) via IMDSv2 only
#   slot      a slot that has its manifest.json is done: say so and stop (OK, nothing uploaded)
#   secret    DB credentials from Secrets Manager into a 0600 file in a private temp dir
#   files     every configured path exists (before any upload), then tar | compress | upload
#   db        DB reachable (before any upload), then dump | compress | upload
#             (the files and db streams run at the same time, each in its own process group; the
#             first one to fail stops the other. A signal while both run is reported at step db.)
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
# Settings (environment, set by the SSM document from its parameters):
#   SB_BUCKET          required  bucket name
#   SB_PREFIX          optional  key prefix, default "dumps"
#   SB_PATHS           optional  space/comma separated absolute paths, default "/etc /var/www"
#   SB_DB_ENGINE       required  mysql | postgres | none   (none must be explicit)
#   SB_DB_HOST         optional  overrides "host" from the secret; one of the two is required
#   SB_DB_PORT         optional  overrides "port" from the secret; default 3306 / 5432
#   SB_DB_NAME         optional  overrides "dbname" from the secret; one of the two is required
#   SB_DB_SECRET_ARN   required unless engine none: JSON with username, password[, host, port, dbname]
#   SB_COMPRESSION     optional  gzip (gzip -1, default) | zstd (zstd -2 -T0)
#   SB_KMS_KEY_ID      required  KMS key ARN of the bucket, for SSE-KMS
#   SB_SCHEDULED_TIME  optional  ISO-8601 UTC, e.g. 2026-11-27T01:00:00Z; empty = now
#   SB_REGION          optional  else from IMDS
#   SB_LOCK_FILE       optional  default /var/lock/schoolbackup-dump.lock
#   SB_TMPDIR          optional  parent of the private temp dir, default /var/tmp
#   SB_IMDS_ENDPOINT   tests only, default http://169.254.169.254 (AWS_ENDPOINT_URL works as usual)
#
# Output: progress lines on stdout; the last line is either
#   schoolbackup-dump: OK s3://<bucket>/<...>/manifest.json                      (exit 0)
#   schoolbackup-dump: FAILED at step <step>: <reason>                           (exit != 0)
# The FAILED line is also written to stderr. Secrets are never printed, never on a command line,
# never in a child's environment. Do not add `set -x`.

set -Eeuo pipefail
umask 077
# Job control: each streamed part runs as its own process group, so a SIGTERM/SIGINT to this
# script can stop the whole pipeline (dump, compressor, upload) and not just wait for it.
set -m

readonly ME="schoolbackup-dump"

STEP="settings"
WORK=""
CHILDREN=()  # process-group leaders of the running streams
DONE=0
ERR_LINE=""

log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ME" "$*"; }

# Print the final failure line (stdout and stderr), clean up, exit. Only the first call counts.
fail() {
    local reason="$1" code="${2:-1}"
    trap - ERR
    if [[ $DONE -eq 0 ]]; then
        DONE=1
        cleanup
        printf '%s: FAILED at step %s: %s\n' "$ME" "$STEP" "$reason" >&2
        printf '%s: FAILED at step %s: %s\n' "$ME" "$STEP" "$reason"
    fi
    exit "$code"
}

stop_child() {
    local pid i alive
    [[ ${#CHILDREN[@]} -gt 0 ]] || return 0
    for pid in "${CHILDREN[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${CHILDREN[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    # The pipeline members are not our children: wait (max ~5 s) until the groups are gone.
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "${CHILDREN[@]}"; do
            kill -0 -- "-$pid" 2>/dev/null && alive=1
        done
        [[ $alive -eq 1 ]] || break
        sleep 0.1
    done
    CHILDREN=()
}

cleanup() {
    stop_child
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        rm -rf -- "$WORK"
    fi
    WORK=""
}

on_signal() { fail "terminated by SIG$1" "$2"; }
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

# ---------------------------------------------------------------- settings
SB_BUCKET="${SB_BUCKET:-}"
SB_PREFIX="${SB_PREFIX:-dumps}"
SB_PATHS="${SB_PATHS:-/etc /var/www}"
SB_DB_ENGINE="${SB_DB_ENGINE:-}"
SB_DB_HOST="${SB_DB_HOST:-}"
SB_DB_PORT="${SB_DB_PORT:-}"
SB_DB_NAME="${SB_DB_NAME:-}"
SB_DB_SECRET_ARN="${SB_DB_SECRET_ARN:-}"
SB_COMPRESSION="${SB_COMPRESSION:-gzip}"
SB_KMS_KEY_ID="${SB_KMS_KEY_ID:-}"
SB_SCHEDULED_TIME="${SB_SCHEDULED_TIME:-}"
SB_REGION="${SB_REGION:-}"
SB_IMDS_ENDPOINT="${SB_IMDS_ENDPOINT:-http://169.254.169.254}"
SB_LOCK_FILE="${SB_LOCK_FILE:-/var/lock/schoolbackup-dump.lock}"
SB_TMPDIR="${SB_TMPDIR:-/var/tmp}"

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
[[ "$SB_KMS_KEY_ID" =~ ^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$ ]] \
    || fail "SB_KMS_KEY_ID must be the KMS key ARN of the bucket, got '${SB_KMS_KEY_ID}'"
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
    if [[ -n "$SB_DB_PORT" ]] && ! [[ "$SB_DB_PORT" =~ ^[0-9]{1,5}$ && "$SB_DB_PORT" -ge 1 && "$SB_DB_PORT" -le 65535 ]]; then
        fail "SB_DB_PORT must be a TCP port 1-65535, got '${SB_DB_PORT}'"
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

# Tools (AL2023 has all of these; the DB client comes with the mariadb105/postgresql15 packages).
for t in python3 curl tar flock "$SB_COMPRESSION"; do
    command -v "$t" >/dev/null || fail "required command '$t' not found in PATH"
done
if [[ "$SB_DB_ENGINE" != none ]]; then
    command -v aws >/dev/null || fail "required command 'aws' (AWS CLI, for the DB secret) not found in PATH"
fi
# The S3 client (s3put.py): the SSM document sets SB_S3PUT_PY to its source; run from a checkout,
# the file next to this script is used.
if [[ -z "${SB_S3PUT_PY:-}" ]]; then
    _here="$(dirname -- "${BASH_SOURCE[0]}")"
    SB_S3PUT_PY="$(cat -- "$_here/s3put.py" 2>/dev/null)" || fail "cannot read the S3 client $_here/s3put.py"
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || fail "python3 is $(python3 -V 2>&1); the S3 client needs Python 3.9 or newer"
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
        ;;
    postgres)
        DUMP_TOOL="$(command -v pg_dump || true)"
        CLIENT_TOOL="$(command -v psql || true)"
        [[ -n "$DUMP_TOOL" ]] || fail "SB_DB_ENGINE=postgres but pg_dump is not installed"
        ;;
esac

# ---------------------------------------------------------------- lock
STEP="lock"
# fd 9 stays open for the whole run (and in the children, so an orphaned upload still holds it).
exec 9>>"$SB_LOCK_FILE" || fail "cannot open lock file $SB_LOCK_FILE"
flock -n 9 || fail "another $ME run is still in progress (lock $SB_LOCK_FILE is held); not starting a second one"

WORK="$(mktemp -d "$SB_TMPDIR/schoolbackup-dump.XXXXXXXX")" || fail "cannot create a private temp dir in $SB_TMPDIR"
chmod 700 "$WORK"

# ---------------------------------------------------------------- imds (v2 only)
STEP="imds"
imds_get() {
    curl -sS -f --max-time 5 --retry 3 --retry-delay 1 -H "@$WORK/imds.hdr" \
        "$SB_IMDS_ENDPOINT/latest/meta-data/$1" 2>>"$WORK/imds.err"
}
TOKEN_FILE="$WORK/imds.token"
curl -sS -f --max-time 5 --retry 3 --retry-delay 1 -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \
    -o "$TOKEN_FILE" "$SB_IMDS_ENDPOINT/latest/api/token" 2>>"$WORK/imds.err" \
    || fail "no IMDSv2 token from $SB_IMDS_ENDPOINT: $(last_err "$WORK/imds.err")"
# The token goes into a header file, not onto curl's command line.
printf 'X-aws-ec2-metadata-token: %s\n' "$(tr -d '\r\n' <"$TOKEN_FILE")" >"$WORK/imds.hdr"
INSTANCE_ID="$(imds_get instance-id)" || fail "cannot read instance-id from IMDSv2: $(last_err "$WORK/imds.err")"
[[ "$INSTANCE_ID" =~ ^i-[0-9a-f]{8,17}$ ]] || fail "IMDS returned an unexpected instance id '${INSTANCE_ID:0:40}'"
if [[ -n "$SB_REGION" ]]; then
    REGION="$SB_REGION"
else
    REGION="$(imds_get placement/region)" || fail "cannot read placement/region from IMDSv2: $(last_err "$WORK/imds.err")"
    [[ "$REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || fail "IMDS returned an unexpected region '${REGION:0:40}'"
fi
rm -f -- "$TOKEN_FILE" "$WORK/imds.hdr"

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
DB_HOST="" DB_PORT="" DB_NAME="" DB_USER=""
if [[ "$SB_DB_ENGINE" != none ]]; then
    STEP="secret"
    # The secret travels aws -> pipe -> python3 (stdin) -> 0600 files in $WORK. It is never in
    # argv, never in a shell variable, never in the environment.
    # shellcheck disable=SC2016
    PARSE_SECRET='
import json, os, re, sys
engine, work, host, port, name = sys.argv[1:6]
def die(msg):
    sys.stderr.write(msg + "\n"); sys.exit(3)
try:
    s = json.loads(json.load(sys.stdin))
except Exception:
    die("secret value is not a JSON object")
if not isinstance(s, dict):
    die("secret value is not a JSON object")
for k in ("username", "password"):
    if not isinstance(s.get(k), str) or not s[k]:
        die("secret has no \"%s\"" % k)
user, pw = s["username"], s["password"]
host = host or str(s.get("host") or "")
port = port or str(s.get("port") or "") or ("3306" if engine == "mysql" else "5432")
name = name or str(s.get("dbname") or "")
if not host: die("no database host: set SB_DB_HOST or \"host\" in the secret")
if not name: die("no database name: set SB_DB_NAME or \"dbname\" in the secret")
if not re.fullmatch(r"[A-Za-z0-9._:-]+", host): die("database host in the secret is not a host name")
if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536: die("database port is not a port")
if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}", name): die("database name is not a plain name")
if any(c in user + pw for c in "\n\r\0"): die("username/password contain a line break or NUL")
def private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
if engine == "mysql":
    q = lambda v: "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
    private(os.path.join(work, "my.cnf"), "[client]\nuser=%s\npassword=%s\n" % (q(user), q(pw)))
else:
    e = lambda v: v.replace("\\", "\\\\").replace(":", "\\:")
    private(os.path.join(work, "pgpass"), "*:*:*:%s:%s\n" % (e(user), e(pw)))
private(os.path.join(work, "db.conf"), "%s\n%s\n%s\n%s\n" % (host, port, name, user))
'
    set +e
    aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SB_DB_SECRET_ARN" \
        --query SecretString --output json 2>"$WORK/secret.err" \
        | python3 -c "$PARSE_SECRET" "$SB_DB_ENGINE" "$WORK" "$SB_DB_HOST" "$SB_DB_PORT" "$SB_DB_NAME" \
            2>"$WORK/secret-parse.err"
    ps_secret=("${PIPESTATUS[@]}")
    set -e
    if [[ ${ps_secret[0]} -ne 0 ]]; then
        fail "cannot read secret $SB_DB_SECRET_ARN: $(last_err "$WORK/secret.err")"
    elif [[ ${ps_secret[1]} -ne 0 ]]; then
        fail "secret $SB_DB_SECRET_ARN unusable: $(last_err "$WORK/secret-parse.err")"
    fi
    { read -r DB_HOST && read -r DB_PORT && read -r DB_NAME && read -r DB_USER; } <"$WORK/db.conf" \
        || fail "internal: incomplete connection settings"
    rm -f -- "$WORK/db.conf"
    log "database $SB_DB_ENGINE $DB_NAME on $DB_HOST:$DB_PORT as $DB_USER (password from the secret)"
fi

# Database command lines. No password anywhere: MySQL reads it from --defaults-extra-file (0600),
# PostgreSQL from PGPASSFILE (0600; the variable only holds the path).
DUMP_CMD=() CHECK_CMD=()
if [[ "$SB_DB_ENGINE" == mysql ]]; then
    common=("--defaults-extra-file=$WORK/my.cnf" "--host=$DB_HOST" "--port=$DB_PORT" "--protocol=TCP")
    DUMP_CMD=("$DUMP_TOOL" "${common[@]}" --single-transaction --routines --events --triggers --hex-blob
        --no-tablespaces --default-character-set=utf8mb4 --quick)
    # MySQL 8's own mysqldump would otherwise write SET @@GLOBAL.GTID_PURGED on GTID servers (RDS).
    if "$DUMP_TOOL" --help 2>/dev/null | grep -q -- '--set-gtid-purged'; then
        DUMP_CMD+=(--set-gtid-purged=OFF)
    fi
    DUMP_CMD+=("$DB_NAME")
    if [[ -n "$CLIENT_TOOL" ]]; then
        CHECK_CMD=("$CLIENT_TOOL" "${common[@]}" --connect-timeout=10 --batch --skip-column-names -e "SELECT 1" "$DB_NAME")
    fi
elif [[ "$SB_DB_ENGINE" == postgres ]]; then
    export PGPASSFILE="$WORK/pgpass" PGCONNECT_TIMEOUT=10
    DUMP_CMD=("$DUMP_TOOL" --no-password --format=plain --host="$DB_HOST" --port="$DB_PORT"
        --username="$DB_USER" --dbname="$DB_NAME")
    if [[ -n "$CLIENT_TOOL" ]]; then
        CHECK_CMD=("$CLIENT_TOOL" --no-password --no-psqlrc --quiet --tuples-only --host="$DB_HOST"
            --port="$DB_PORT" --username="$DB_USER" --dbname="$DB_NAME" --command="SELECT 1")
    fi
fi

# ---------------------------------------------------------------- preflight (before any upload)
STEP="files"
TAR_MEMBERS=()
for p in "${PATHS[@]}"; do
    [[ -e "$p" ]] || fail "configured path $p does not exist (SB_PATHS)"
    p="${p%/}"
    TAR_MEMBERS+=("${p#/}")
    [[ -n "${p#/}" ]] || TAR_MEMBERS[-1]="."
done

if [[ "$SB_DB_ENGINE" != none ]]; then
    STEP="db"
    if [[ ${#CHECK_CMD[@]} -gt 0 ]]; then
        "${CHECK_CMD[@]}" >/dev/null 2>"$WORK/check.err" </dev/null \
            || fail "cannot connect to $SB_DB_ENGINE database $DB_NAME on $DB_HOST:$DB_PORT: $(last_err "$WORK/check.err")"
    else
        log "warning: no $SB_DB_ENGINE client for a connection check; the dump itself will tell"
    fi
fi

# ---------------------------------------------------------------- streaming
compress() {
    case "$SB_COMPRESSION" in
        gzip) gzip -c -1 ;;
        # -2: on SQL/HTML text ~7 % larger than -3 for ~30 % less CPU (the dump already takes more
        # than one core of a 2-core server); -T0 uses every core that is left.
        zstd) zstd -q -c -2 -T0 ;;
    esac
}

produce_files() { tar --create --file=- --directory=/ --exclude="${WORK#/}" -- "${TAR_MEMBERS[@]}"; }
produce_db() { "${DUMP_CMD[@]}" </dev/null; }

declare -A PART_PID=() PART_KEY=() PART_OK=() PART_ENGINE=() PART_T0=() PART_DONE=()
declare -A RECORD=()  # kind -> kind|engine|key|bytes|sha256
PARTS=()

# start_part <kind> <producer function> <key> <producer ok exit codes, e.g. "0 1"> [engine]
# Runs producer | compress | s3put upload in the background, as its own process group. s3put hashes
# and counts the stream, uploads it write-once (multipart for anything above one part) and aborts a
# multipart upload that fails or is stopped.
start_part() {
    local kind="$1" producer="$2" key="$3"
    local meta="$WORK/$kind.meta" perr="$WORK/$kind.err" uerr="$WORK/$kind.upload.err" st="$WORK/$kind.status"
    PARTS+=("$kind")
    PART_KEY[$kind]="$key" PART_OK[$kind]="$4" PART_ENGINE[$kind]="${5:-}" PART_T0[$kind]=$SECONDS
    log "streaming $kind to s3://$SB_BUCKET/$key"
    (
        trap - ERR EXIT TERM INT HUP
        set +e
        "$producer" 2>"$perr" | compress \
            | s3 upload "$key" --meta "$meta" --sse-kms-key-id "$SB_KMS_KEY_ID" --metadata "$OBJECT_METADATA" \
                2>"$uerr"
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
# at once (fail -> cleanup -> stop_child) instead of after the longest stream.
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
source, started, finished, out = sys.argv[1:5]
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
with open(out, "w") as f:
    json.dump(m, f, indent=2)
    f.write("\n")
' "$INSTANCE_ID" "$STARTED_AT" "$FINISHED_AT" "$WORK/manifest.json" \
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
