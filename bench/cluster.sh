#!/usr/bin/env bash
# cluster.sh: benchmarks of modgate's replicas (README "Running replicas"),
# run on the cluster of examples/replicas/run.sh: versitygw, PostgreSQL, three
# replicas, HAProxy. Like run.sh, every number is a ratio against a floor
# measured in the same run:
#
#   cold fill   `go mod download all` of bench/project through the balancer
#               (three replicas, empty store) / the same straight from the
#               upstream in `go env GOPROXY`                  target ≤ 1.20
#   cache hits  req/s through HAProxy with three replicas / with one (the
#               other two set to maintenance in the same HAProxy), wrk over
#               every .mod and .zip of the project               (info)
#
# Usage: bench/cluster.sh   (needs network to the upstream, go, curl, wrk;
#                            installs what run.sh needs, like run.sh)
#
# Environment: BENCH_PORT (balancer port, default 3100), BENCH_WRK_DURATION
# (default 10s), BENCH_CONNS (wrk connections, default 32), BENCH_KEEP=1 keeps
# the work directory's scratch data.
# Exit status: 0 targets met, 3 a target missed, anything else a failure.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
PORT=${BENCH_PORT:-3100}
DURATION=${BENCH_WRK_DURATION:-10s}
CONNS=${BENCH_CONNS:-32}

log() { printf '%s cluster-bench: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/modgate-cluster-bench.XXXXXX")
chmod 755 "$WORK" # PostgreSQL's user must reach the cluster's directory
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/bin"
CLUSTER_PID=
cleanup() {
	if [[ -n $CLUSTER_PID ]] && kill -0 "$CLUSTER_PID" 2>/dev/null; then
		kill -TERM "$CLUSTER_PID"
		wait "$CLUSTER_PID" 2>/dev/null || true
	fi
	if [[ ${BENCH_KEEP:-0} != 1 ]]; then
		chmod -R u+w "$WORK/scratch" 2>/dev/null || true
		rm -rf "$WORK/scratch" "$WORK/bin" "$WORK/cluster/s3" "$WORK/cluster/postgres" "$WORK/cluster/replica-"*
	fi
	log "work directory: $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v wrk >/dev/null; then
	# shellcheck source=../.ci/lib.sh
	. "$REPO/.ci/lib.sh"
	ci_apt_install wrk || die "missing tool: wrk"
fi
for tool in go curl awk; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done
UPSTREAM=$(go env GOPROXY)
[[ -n $UPSTREAM && $UPSTREAM != off ]] || die "go env GOPROXY is empty or off"

log "building modgate"
(cd "$REPO" && go build -o "$WORK/bin/modgate" ./cmd/modgate) >"$LOGS/build.log" 2>&1 || {
	cat "$LOGS/build.log" >&2
	die "building modgate failed"
}

# dl PROXY MODCACHE: `go mod download all` of a copy of the project; only
# the two arguments differ between a run and its floor.
PROJECT=$WORK/scratch/project
mkdir -p "$WORK/scratch"
cp -R "$BENCH_DIR/project" "$PROJECT"
dl() {
	(cd "$PROJECT" && env GOPROXY="$1" GOMODCACHE="$2" GOSUMDB="$(go env GOSUMDB)" GONOSUMDB="$(go env GONOSUMDB)" \
		GOPRIVATE="$(go env GOPRIVATE)" GOFLAGS="-mod=mod -modcacherw" GOTOOLCHAIN=local GOWORK=off \
		go mod download all)
}
timed_dl() { # NAME PROXY MODCACHE: prints seconds
	local t0 t1
	t0=$(date +%s%N)
	dl "$2" "$3" >"$LOGS/$1.log" 2>&1 || {
		tail -20 "$LOGS/$1.log" >&2
		die "$1: go mod download all failed"
	}
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}

# --- the cluster ---------------------------------------------------------------
log "starting the cluster (examples/replicas/run.sh, PORT=$PORT)"
PORT=$PORT DATA_DIR=$WORK/cluster MODGATE_BIN=$WORK/bin/modgate MODGATE_LOG_LEVEL=warn \
	"$REPO/examples/replicas/run.sh" >"$LOGS/cluster.log" 2>&1 &
CLUSTER_PID=$!
BALANCER=http://127.0.0.1:$PORT
STATS=http://127.0.0.1:$((PORT + 6))/stats
for ((i = 0; i < 600; i++)); do
	grep -q "modgate cluster ready" "$LOGS/cluster.log" && break
	kill -0 "$CLUSTER_PID" 2>/dev/null || {
		cat "$LOGS/cluster.log" >&2
		die "run.sh exited"
	}
	sleep 0.5
done
grep -q "modgate cluster ready" "$LOGS/cluster.log" || die "the cluster did not start within 5 minutes"

# --- cold fill -------------------------------------------------------------------
direct=$(timed_dl cold-direct "$UPSTREAM" "$WORK/scratch/mc-direct")
log "cold fill direct: ${direct}s"
cluster=$(timed_dl cold-cluster "$BALANCER" "$WORK/scratch/mc-cluster")
log "cold fill through three replicas: ${cluster}s"
cold_ratio=$(awk -v a="$cluster" -v b="$direct" 'BEGIN { printf "%.2f", a / b }')

# --- cache hits: three replicas vs one ----------------------------------------------
PATHS=$WORK/paths.txt
(cd "$WORK/scratch/mc-cluster/cache/download" && find . -name '*.mod' -o -name '*.zip') | sed 's|^\.||' | sort >"$PATHS"
[[ -s $PATHS ]] || die "no .mod or .zip files in the module cache"
# Warm every replica's local cache: three passes over every path, round robin.
for _ in 1 2 3; do
	while read -r p; do curl -fsS -o /dev/null "$BALANCER$p" || die "warming $p failed"; done <"$PATHS"
done
wrk_rps() { # NAME: prints req/s
	BENCH_PATHS=$PATHS wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s -s "$BENCH_DIR/wrk.lua" "$BALANCER" \
		>"$LOGS/wrk-$1.log" 2>&1 || {
		cat "$LOGS/wrk-$1.log" >&2
		die "wrk $1 failed"
	}
	local line
	line=$(grep '^BENCH ' "$LOGS/wrk-$1.log") || die "wrk $1: no BENCH line"
	[[ $line == *" errors=0 status_errors=0" ]] || die "wrk $1: requests failed: $line"
	echo "$line" >"$LOGS/wrk-$1.line"
	sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$line"
}
p99() { sed 's/.*p99_us=\([0-9.]*\).*/\1/' "$LOGS/wrk-$1.line"; }
three=$(wrk_rps three)
# One replica behind the same HAProxy: the others in maintenance.
maint() { # ACTION SERVER...
	local action=$1 s
	shift
	for s in "$@"; do
		curl -fsS -o /dev/null -d "s=$s&action=$action&b=replicas" "$STATS" || die "haproxy: $action $s failed"
	done
}
maint maint replica-2 replica-3
one=$(wrk_rps one)
maint ready replica-2 replica-3
hit_ratio=$(awk -v a="$three" -v b="$one" 'BEGIN { printf "%.2f", a / b }')

verdict=PASS
awk -v r="$cold_ratio" 'BEGIN { exit !(r <= 1.20) }' || verdict=FAIL
{
	echo "| metric | cluster | floor | ratio | target | result |"
	echo "|---|---|---|---|---|---|"
	echo "| cold fill, three replicas vs direct (s) | $cluster | $direct | $cold_ratio | ≤ 1.20 | $verdict |"
	echo "| cache-hit req/s, three replicas vs one behind the same HAProxy ($CONNS conns) | $three | $one | $hit_ratio | (info) | p99 $(p99 three) µs vs $(p99 one) µs |"
	echo
	echo "$(wc -l <"$PATHS") paths, $DURATION per wrk run, $(nproc) CPUs (every process shares them)."
} | tee "$WORK/results.md"
[[ $verdict == PASS ]] || exit 3
