#!/usr/bin/env bash
# Runs a modgate cluster on 127.0.0.1, in the foreground, until SIGINT or
# SIGTERM: versitygw (S3-compatible object store), PostgreSQL 15, three
# modgate replicas sharing both, and HAProxy in front of them.
#
#	examples/replicas/run.sh
#	export GOPROXY=http://127.0.0.1:3000
#
# Environment:
#	PORT        the balancer's port (default 3000); the other servers take
#	            the ports just above it: replicas PORT+1..PORT+3, versitygw
#	            PORT+4, PostgreSQL PORT+5, HAProxy's statistics PORT+6
#	DATA_DIR    where all state and logs go (default: a new temporary
#	            directory, kept after exit); logs in $DATA_DIR/logs
#	MODGATE_*   passed to every replica (MODGATE_GOPROXY, MODGATE_GOSUMDB,
#	            MODGATE_LOG_LEVEL, ...)
#	MODGATE_BIN a modgate binary to run (default: built from this checkout)
#	BALANCE     HAProxy's balance algorithm (default roundrobin); "source"
#	            keeps each client on one replica, so that the zips a
#	            replica fills ahead of a client (upstream.zip_ahead_workers)
#	            are on the replica it asks next
#
# What is missing is installed the way .ci/run does (.ci/lib.sh): HAProxy
# and PostgreSQL from apt (as root), versitygw built with the local Go into
# $HOME/.cache/modgate-ci/bin. On SIGINT or SIGTERM every process it started
# is stopped, by PID; a replica that dies meanwhile is reported, and the
# others keep serving.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../../.ci/lib.sh
. "$repo/.ci/lib.sh"

PORT=${PORT:-3000}
BALANCE=${BALANCE:-roundrobin}
case $BALANCE in
roundrobin | leastconn | source | first) ;;
*)
	echo "run.sh: BALANCE must be roundrobin, leastconn, source or first, not $BALANCE" >&2
	exit 2
	;;
esac
if [ -z "${DATA_DIR:-}" ]; then
	DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/modgate-replicas.XXXXXX")
	chmod 755 "$DATA_DIR" # PostgreSQL's user must reach $DATA_DIR/postgres
fi
mkdir -p "$DATA_DIR/logs"
DATA_DIR=$(cd "$DATA_DIR" && pwd)
logs=$DATA_DIR/logs
s3_port=$((PORT + 4))
pg_port=$((PORT + 5))
stats_port=$((PORT + 6))
replicas=3

pids=()   # every process started here, stopped in reverse order
names=()

say() { echo "run.sh: $*" >&2; }

stop_all() {
	trap - INT TERM EXIT
	local i pid
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	# Give them 40 seconds (a replica drains, then PostgreSQL waits for its
	# replicas to disconnect), then SIGKILL what is left.
	local deadline=$((SECONDS + 40))
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "${names[i]} (pid $pid) did not stop; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	say "stopped; state and logs are in $DATA_DIR"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

started() { # name pid
	names+=("$1")
	pids+=("$2")
}

# wait_for NAME PID COMMAND...: polls COMMAND for up to 30 seconds while the
# process PID lives.
wait_for() {
	local name=$1 pid=$2
	shift 2
	local deadline=$((SECONDS + 30))
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			say "$name exited; its log:"
			tail -n 30 "$logs/$name.log" >&2
			exit 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			say "$name is not ready after 30s; its log:"
			tail -n 30 "$logs/$name.log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# as_pg CMD...: runs CMD as the PostgreSQL user: postgres when we are root
# (PostgreSQL refuses to run as root), else ourselves. exec'ed, so that a
# background process's PID is PostgreSQL's own.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
	fi
	exec "$@"
}

# --- install what is missing -------------------------------------------
ci_install_haproxy
ci_install_postgres
ci_install_versitygw
command -v curl >/dev/null || ci_apt_install curl
if [ -n "${MODGATE_BIN:-}" ]; then
	modgate=$MODGATE_BIN
else
	modgate=$DATA_DIR/bin/modgate
	say "building modgate into $modgate"
	(cd "$repo" && go build -o "$modgate" ./cmd/modgate)
fi

# --- versitygw: the object store ---------------------------------------
s3_key=${S3_ACCESS_KEY:-modgate}
s3_secret_file=$DATA_DIR/s3-secret
[ -s "$s3_secret_file" ] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$s3_secret_file"
s3_secret=$(cat "$s3_secret_file")
mkdir -p "$DATA_DIR/s3"
ROOT_ACCESS_KEY=$s3_key ROOT_SECRET_KEY=$s3_secret \
	"$(ci_versitygw)" --port "127.0.0.1:$s3_port" --health /health posix "$DATA_DIR/s3" \
	>"$logs/versitygw.log" 2>&1 &
started versitygw $!
wait_for versitygw $! curl -sf "http://127.0.0.1:$s3_port/health"
# The bucket (an S3 CreateBucket, signed by curl); 409: it is there already.
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
code=$(curl -s -o "$logs/create-bucket.out" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
	-H "x-amz-content-sha256: $empty_sha256" --user "$s3_key:$s3_secret" -X PUT "http://127.0.0.1:$s3_port/modgate")
case $code in
200 | 409) ;;
*)
	say "creating the bucket: HTTP $code: $(cat "$logs/create-bucket.out")"
	exit 1
	;;
esac

# --- PostgreSQL ----------------------------------------------------------
pg_dir=$DATA_DIR/postgres
if [ ! -s "$pg_dir/data/PG_VERSION" ]; then
	mkdir -p "$pg_dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$pg_dir"
		if ! (as_pg test -w "$pg_dir"); then
			say "the postgres user cannot reach $pg_dir: make DATA_DIR and the directories above it searchable (chmod o+x)"
			exit 1
		fi
	fi
	(as_pg "$PG_BIN/initdb" -D "$pg_dir/data" -U postgres --auth=trust) >"$logs/initdb.log" 2>&1 || {
		say "initdb failed:"
		cat "$logs/initdb.log" >&2
		exit 1
	}
fi
(as_pg "$PG_BIN/postgres" -D "$pg_dir/data" -c listen_addresses=127.0.0.1 -c "port=$pg_port" \
	-c "unix_socket_directories=$pg_dir") >"$logs/postgres.log" 2>&1 &
started postgres $!
wait_for postgres $! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pg_port"
if ! "$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "select 1 from pg_database where datname = 'modgate'" | grep -q 1; then
	"$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres modgate
fi

# --- three replicas --------------------------------------------------------
export MODGATE_S3_ACCESS_KEY=$s3_key MODGATE_S3_SECRET_KEY=$s3_secret
export MODGATE_POSTGRES_DSN="postgres://postgres@127.0.0.1:$pg_port/modgate?sslmode=disable"
cat >"$DATA_DIR/modgate.yaml" <<YAML
# One configuration for every replica; each gets its own -listen and
# -data-dir (local caches, spooled audit records) on the command line.
storage:
  type: s3
  s3:
    endpoint: http://127.0.0.1:$s3_port
    bucket: modgate
    access_key_env: MODGATE_S3_ACCESS_KEY
    secret_key_env: MODGATE_S3_SECRET_KEY
state:
  postgres:
    dsn_env: MODGATE_POSTGRES_DSN
YAML
servers=
for i in $(seq 1 $replicas); do
	# The first alone (it migrates the schema and creates the audit chain's
	# signing key in the database), then the others at once.
	if [ "$i" = 2 ]; then
		wait_for replica-1 "${pids[2]}" curl -sf "http://127.0.0.1:$((PORT + 1))/readyz"
	fi
	"$modgate" serve -config "$DATA_DIR/modgate.yaml" -listen "127.0.0.1:$((PORT + i))" \
		-data-dir "$DATA_DIR/replica-$i" >"$logs/replica-$i.log" 2>&1 &
	started "replica-$i" $!
	servers+="	server replica-$i 127.0.0.1:$((PORT + i)) check"$'\n'
done
for i in $(seq 1 $replicas); do
	wait_for "replica-$i" "${pids[$((i + 1))]}" curl -sf "http://127.0.0.1:$((PORT + i))/readyz"
done

# --- HAProxy ---------------------------------------------------------------
cat >"$DATA_DIR/haproxy.cfg" <<CFG
global
	maxconn 4096

defaults
	mode http
	timeout connect 1s
	timeout client 2m
	timeout server 2m
	timeout check 2s
	retries 2
	option redispatch 1
	retry-on conn-failure empty-response response-timeout

frontend modgate
	bind 127.0.0.1:$PORT
	default_backend replicas

listen stats
	bind 127.0.0.1:$stats_port
	stats enable
	stats uri /stats
	# Loopback only: lets bench/cluster.sh (and you) put a replica in
	# maintenance from the page.
	stats admin if TRUE

backend replicas
	balance $BALANCE
	option httpchk GET /readyz
	http-check expect status 200
	default-server inter 500ms fall 2 rise 2
$servers
CFG
"$(ci_haproxy)" -c -q -f "$DATA_DIR/haproxy.cfg"
"$(ci_haproxy)" -f "$DATA_DIR/haproxy.cfg" -db >"$logs/haproxy.log" 2>&1 &
started haproxy $!
wait_for haproxy $! curl -sf "http://127.0.0.1:$PORT/readyz"

say "modgate cluster ready: export GOPROXY=http://127.0.0.1:$PORT"
say "replicas on 127.0.0.1:$((PORT + 1))-$((PORT + replicas)), HAProxy statistics http://127.0.0.1:$stats_port/stats, state and logs in $DATA_DIR"
say "stop with Ctrl-C (SIGINT) or SIGTERM"

# Foreground until a signal; report a process that exits meanwhile.
declare -A gone=()
while :; do
	sleep 1 &
	wait $! || true
	for i in "${!pids[@]}"; do
		if [ -z "${gone[$i]:-}" ] && ! kill -0 "${pids[i]}" 2>/dev/null; then
			gone[$i]=1
			say "${names[i]} (pid ${pids[i]}) exited; see $logs/${names[i]}.log"
		fi
	done
done
