#!/usr/bin/env bash
# schoolbackup restore drill: the checks on the restored web server (run by SSM Run Command as root
# on the server the drill launched from its AMI, in the drill's isolated VPC).
#
# Each check prints one line, whatever happens:
#   SB-CHECK <app|db|dump> <ok|failed> <seconds> <what was seen>
# A check that cannot run prints "failed" with the reason: never a skip. Exit 0 when all passed, 1
# otherwise (the drill reads the lines, not the exit code).
#
#   app   the web server answers on SB_APP_URL (localhost) with 2xx or 3xx, within a few minutes of
#         boot. First the production database's host name is pointed at the restored database
#         (/etc/hosts), so the restored application talks to the restored data, never to production.
#   db    the restored database answers SB_CHECK_SQL (base64) with a first value that is not empty,
#         not 0 and not NULL, as the restored instance's master user, whose password RDS generated
#         for this instance and keeps in Secrets Manager (dbsecret.py: in memory only).
#   dump  the newest dump (SB_DUMP_FOLDER) against its manifest: every object's SHA-256 and size;
#         the files archive lists; the database part loads into a scratch database of the restored
#         instance and SB_CHECK_SQL answers there too. The scratch database (its own name per run,
#         sb_drill_check_<pid>, so two checks never load into one) is dropped afterwards.
#
# Settings (environment): SB_APP_URL, SB_CHECK_SQL_B64, SB_DB_ENGINE (mysql|postgres), SB_DB_NAME,
# SB_PROD_DB_HOST, SB_DB_HOST, SB_DB_PORT, SB_DB_SECRET_ARN, SB_BUCKET, SB_DUMP_FOLDER, SB_REGION,
# SB_DBSECRET_PY (the helper's source; when unset, dbsecret.py next to this script),
# SB_APP_WAIT_SECONDS (default 300), SB_HOSTS_FILE (default /etc/hosts).
set -uo pipefail
umask 077

APP_WAIT="${SB_APP_WAIT_SECONDS:-300}"
HOSTS="${SB_HOSTS_FILE:-/etc/hosts}"
SCRATCH_DB="sb_drill_check_$$"
WORK="$(mktemp -d /tmp/sb-drill-check.XXXXXX)" || { echo "SB-CHECK app failed 0 cannot create a work dir"; exit 1; }
KEEPER=""
cleanup() {
    [[ -n "$KEEPER" ]] && kill "$KEEPER" 2>/dev/null
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [[ -z "${SB_DBSECRET_PY:-}" ]]; then
    SB_DBSECRET_PY="$(cat -- "$(dirname -- "$0")/dbsecret.py" 2>/dev/null)" || SB_DBSECRET_PY=""
fi
FAILED=0
report() { # name ok|failed started-epoch detail
    local took detail="${4//$'\n'/ }"
    took=$(( $(date +%s) - $3 ))
    [[ "$2" == ok ]] || FAILED=1
    printf 'SB-CHECK %s %s %s %s\n' "$1" "$2" "$took" "${detail:0:400}"
}
last() { tail -n 3 -- "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-300; }
SQL="$(printf '%s' "${SB_CHECK_SQL_B64:-}" | base64 -d 2>/dev/null)"

# ---------------------------------------------------------------- the restored database's credentials
DB_READY=0 DB_WHY="no restored database"
if [[ -n "${SB_DB_HOST:-}" ]]; then
    if [[ -z "$SB_DBSECRET_PY" ]]; then
        DB_WHY="dbsecret.py is missing"
    else
        aws secretsmanager get-secret-value --region "$SB_REGION" --secret-id "$SB_DB_SECRET_ARN" \
            --query SecretString --output json 2>"$WORK/secret.err" \
            | python3 -c "$SB_DBSECRET_PY" serve "$SB_DB_ENGINE" "$WORK/cred" "$SB_DB_HOST" "$SB_DB_PORT" \
                "$SB_DB_NAME" 3600 >"$WORK/db.conf" 2>"$WORK/secret-parse.err"
        ps_secret=("${PIPESTATUS[@]}")
        if [[ ${ps_secret[0]} -ne 0 ]]; then
            DB_WHY="cannot read the restored database's secret: $(last "$WORK/secret.err")"
        elif [[ ${ps_secret[1]} -ne 0 ]]; then
            DB_WHY="the restored database's secret is unusable: $(last "$WORK/secret-parse.err")"
        else
            { read -r _ && read -r _ && read -r _ && read -r _ && read -r KEEPER; } <"$WORK/db.conf"
            DB_READY=1
        fi
    fi
fi
db_tool() { python3 -c "$SB_DBSECRET_PY" exec "$SB_DB_ENGINE" "$WORK/cred" "$@"; }
# sql <database or ""> <statement>: its rows, tab-separated, without headers
sql() {
    if [[ "$SB_DB_ENGINE" == postgres ]]; then
        db_tool psql -X -h "$SB_DB_HOST" -p "$SB_DB_PORT" -At -v ON_ERROR_STOP=1 -d "${1:-postgres}" -c "$2"
    else
        db_tool mysql --host="$SB_DB_HOST" --port="$SB_DB_PORT" --protocol=TCP -N -B -e "$2" ${1:+"$1"}
    fi
}
# settled: wait (at most 5 s) until the checksum and size of a stream are written
settled() {
    local _
    for _ in $(seq 50); do
        [[ -s "$WORK/sum" && -s "$WORK/size" ]] && return 0
        sleep 0.1
    done
}
# load <database>: SQL on stdin into it
load() {
    if [[ "$SB_DB_ENGINE" == postgres ]]; then
        db_tool psql -X -q -h "$SB_DB_HOST" -p "$SB_DB_PORT" -v ON_ERROR_STOP=1 -d "$1" >/dev/null
    else
        db_tool mysql --host="$SB_DB_HOST" --port="$SB_DB_PORT" --protocol=TCP "$1"
    fi
}
# closed_early <download status> <decompress status>: true when both upstream stages failed only
# because the last stage stopped reading (the download reports a broken pipe, the decompressor dies
# of SIGPIPE, 141): then the last stage's own error is the reason, not the download or the dump.
closed_early() {
    { [[ $1 -eq 0 ]] || grep -q "Broken pipe" "$WORK/s3.err"; } && [[ $2 -eq 0 || $2 -eq 141 ]]
}
answer_ok() { [[ -n "$1" && "$1" != 0 && "$1" != NULL ]]; }

# ---------------------------------------------------------------- app
t0=$(date +%s)
if [[ -n "${SB_PROD_DB_HOST:-}" && -n "${SB_DB_HOST:-}" ]]; then
    ip="$(getent hosts "$SB_DB_HOST" | awk '{print $1; exit}')"
    if [[ -n "$ip" ]] && ! grep -q "schoolbackup-drill" "$HOSTS"; then
        printf '%s %s # schoolbackup-drill: production DB name -> restored DB\n' "$ip" "$SB_PROD_DB_HOST" >>"$HOSTS"
    fi
fi
code="" deadline=$(( $(date +%s) + APP_WAIT ))
while :; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -- "$SB_APP_URL" 2>/dev/null)"
    [[ "$code" =~ ^[23][0-9][0-9]$ ]] && break
    (( $(date +%s) >= deadline )) && break
    sleep 5
done
if [[ "$code" =~ ^[23][0-9][0-9]$ ]]; then
    report app ok "$t0" "$SB_APP_URL answered HTTP $code"
elif [[ -z "$code" || "$code" == 000 ]]; then
    report app failed "$t0" "$SB_APP_URL did not answer within $APP_WAIT s (is the web server enabled at boot?)"
else
    report app failed "$t0" "$SB_APP_URL answered HTTP $code"
fi

# ---------------------------------------------------------------- db
t0=$(date +%s)
if (( ! DB_READY )); then
    report db failed "$t0" "$DB_WHY"
elif [[ -z "$SQL" ]]; then
    report db failed "$t0" "no check SQL configured"
elif value="$(sql "$SB_DB_NAME" "$SQL" 2>"$WORK/db.err" | head -n 1)" && answer_ok "$value"; then
    report db ok "$t0" "$SB_DB_NAME answered $value"
elif [[ -s "$WORK/db.err" ]]; then
    report db failed "$t0" "$SB_DB_NAME: $(last "$WORK/db.err")"
else
    report db failed "$t0" "$SB_DB_NAME answered '${value:-nothing}' (expected a value other than 0)"
fi

# ---------------------------------------------------------------- dump
t0=$(date +%s)
check_dump() { # prints the detail; returns 1 on a failure
    [[ -n "${SB_DUMP_FOLDER:-}" ]] || { echo "no dump to check"; return 1; }
    (( DB_READY )) || { echo "$DB_WHY"; return 1; }
    aws s3 cp --region "$SB_REGION" --only-show-errors "s3://$SB_BUCKET/${SB_DUMP_FOLDER}manifest.json" \
        "$WORK/manifest.json" 2>"$WORK/s3.err" \
        || { echo "cannot read ${SB_DUMP_FOLDER}manifest.json: $(last "$WORK/s3.err")"; return 1; }
    python3 - "$WORK/manifest.json" >"$WORK/objects" 2>"$WORK/manifest.err" <<'PY' \
        || { echo "manifest unusable: $(last "$WORK/manifest.err")"; return 1; }
import json, sys
m = json.load(open(sys.argv[1]))
if m.get("status") != "ok":
    sys.exit("manifest status is %r" % m.get("status"))
for o in m["objects"]:
    print(o["kind"], o["key"], o["sha256"], o["bytes"])
PY
    local kind key sha bytes n=0 loaded=0 got size
    while read -r kind key sha bytes; do
        n=$((n + 1))
        case "$key" in *.zst) unpack=(zstd -dc) ;; *) unpack=(gzip -dc) ;; esac
        : >"$WORK/sum"
        : >"$WORK/size"
        if [[ "$kind" == db ]]; then
            sql "" "DROP DATABASE IF EXISTS $SCRATCH_DB" >/dev/null 2>"$WORK/load.err"
            sql "" "CREATE DATABASE $SCRATCH_DB" >/dev/null 2>>"$WORK/load.err" \
                || { echo "cannot create the scratch database: $(last "$WORK/load.err")"; return 1; }
            aws s3 cp --region "$SB_REGION" --only-show-errors "s3://$SB_BUCKET/$key" - 2>"$WORK/s3.err" \
                | tee >(sha256sum >"$WORK/sum") >(wc -c >"$WORK/size") | "${unpack[@]}" \
                | load "$SCRATCH_DB" 2>"$WORK/load.err"
            local ps=("${PIPESTATUS[@]}")
            settled
            if [[ ${ps[3]} -ne 0 ]] && closed_early "${ps[0]}" "${ps[2]}"; then
                echo "$key does not load into $SCRATCH_DB: $(last "$WORK/load.err")"; return 1
            fi
            [[ ${ps[0]} -eq 0 ]] || { echo "cannot read $key: $(last "$WORK/s3.err")"; return 1; }
            [[ ${ps[2]} -eq 0 ]] || { echo "$key does not decompress"; return 1; }
            [[ ${ps[3]} -eq 0 ]] || { echo "$key does not load into $SCRATCH_DB: $(last "$WORK/load.err")"; return 1; }
            loaded=1
        else
            aws s3 cp --region "$SB_REGION" --only-show-errors "s3://$SB_BUCKET/$key" - 2>"$WORK/s3.err" \
                | tee >(sha256sum >"$WORK/sum") >(wc -c >"$WORK/size") | "${unpack[@]}" | tar -t >/dev/null 2>"$WORK/tar.err"
            local ps=("${PIPESTATUS[@]}")
            settled
            if [[ ${ps[3]} -ne 0 ]] && closed_early "${ps[0]}" "${ps[2]}"; then
                echo "$key is not a readable archive: $(last "$WORK/tar.err")"; return 1
            fi
            [[ ${ps[0]} -eq 0 ]] || { echo "cannot read $key: $(last "$WORK/s3.err")"; return 1; }
            [[ ${ps[2]} -eq 0 && ${ps[3]} -eq 0 ]] || { echo "$key is not a readable archive: $(last "$WORK/tar.err")"; return 1; }
        fi
        got="$(awk '{print $1}' "$WORK/sum")" size="$(tr -d ' ' <"$WORK/size")"
        [[ "$got" == "$sha" ]] || { echo "$key: SHA-256 $got, the manifest says $sha"; return 1; }
        [[ "$size" == "$bytes" ]] || { echo "$key: $size bytes, the manifest says $bytes"; return 1; }
    done <"$WORK/objects"
    (( n > 0 )) || { echo "the manifest lists no objects"; return 1; }
    if (( loaded )); then
        value="$(sql "$SCRATCH_DB" "$SQL" 2>"$WORK/db.err" | head -n 1)"
        answer_ok "$value" || { echo "the loaded dump answered '${value:-nothing}' $(last "$WORK/db.err")"; return 1; }
        echo "$n object(s) match the manifest; the database dump loaded into $SCRATCH_DB and answered $value"
    else
        echo "$n object(s) match the manifest (no database part)"
    fi
}
if detail="$(check_dump)"; then
    report dump ok "$t0" "$detail"
else
    report dump failed "$t0" "$detail"
fi
# on every path, also when a check above failed half-way through the load
(( DB_READY )) && sql "" "DROP DATABASE IF EXISTS $SCRATCH_DB" >/dev/null 2>&1
exit "$FAILED"
