#!/usr/bin/env bash
# run.sh: modgate's benchmark suite. Every number is reported as a ratio
# against a floor measured in the same run; see bench/README.md for what each
# phase measures and how to read the table.
#
# Usage: bench/run.sh            (from anywhere; needs network to the upstream
#                                 in `go env GOPROXY`, go, curl, wrk, hyperfine)
#
# Environment (all optional):
#   BENCH_OUT           results file (default: $WORK/results.md, printed at the end)
#   BENCH_TMPDIR        where the one work directory is created (default:
#                       /dev/shm when it has 8 GB free, else $TMPDIR or /tmp)
#   BENCH_KEEP=1        keep the work directory (data dirs, module caches, logs)
#   BENCH_WARM_RUNS     warm rounds, each runs modgate and both floors once (default 7)
#   BENCH_WRK_DURATION  length of each wrk run (default 10s)
#   BENCH_WRK_WARN=1    add (not gated) throughput rows with the access log off (-log-level warn)
#   BENCH_WRK_MOD=0     skip the .mod-only throughput rows
#   BENCH_DATA          an existing data dir (e.g. kept by BENCH_KEEP=1, or made
#                       with `modgate import --gomodcache`) of the same project:
#                       skips the cold fill (phase a) and measures against it
#   BENCH_PHASES        the phases to run, default abcd (b and c need a or BENCH_DATA)
#   BENCH_BUDGET        whole-script time budget in seconds (default 1140)
#   BENCH_WORKLOADS     cold-fill workloads, from "small large" (default both);
#                       the later phases use the large one's store
#   BENCH_COLD_ROUNDS   cold-fill rounds per workload (default: small 4, large 2)
#   BENCH_COLD_ONLY=1   stop after the cold fills
#
# Exit status: 0 all gated targets met, 3 a target missed, anything else the
# suite itself failed (a phase timed out, a tool is missing, ...).
set -euo pipefail

START=$(date +%s)
BUDGET=${BENCH_BUDGET:-1140}
DEADLINE=$((START + BUDGET))

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# --- work directory, process tracking, cleanup ---------------------------------

pick_tmpdir() {
	if [[ -n ${BENCH_TMPDIR:-} ]]; then
		echo "$BENCH_TMPDIR"
		return
	fi
	# A tmpfs keeps the go command's extraction of ~1.5 GB of module files
	# from dominating (and adding disk noise to) the warm measurement.
	local free_kb
	if [[ -d /dev/shm && -w /dev/shm ]] &&
		free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }') &&
		((free_kb > 8 * 1024 * 1024)); then
		echo /dev/shm
		return
	fi
	echo "${TMPDIR:-/tmp}"
}

WORK=$(mktemp -d "$(pick_tmpdir)/modgate-bench.XXXXXX")
SCRATCH=$WORK/scratch # everything big; removed on exit unless BENCH_KEEP=1
LOGS=$WORK/logs
mkdir -p "$SCRATCH" "$LOGS" "$WORK/bin"
OUT=${BENCH_OUT:-$WORK/results.md}

PIDS=() # every background process this script started, and only those

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

stop_pid() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

cleanup() {
	local status=$? p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		log "kept work directory $WORK"
	else
		# The module caches are read-only unless -modcacherw was in effect.
		chmod -R u+w "$SCRATCH" 2>/dev/null || true
		rm -rf "$SCRATCH"
		log "logs are in $LOGS"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bounded SECS CMD...: runs CMD with a timeout of SECS, shortened to what is
# left of the whole-script budget.
bounded() {
	local secs=$1 left
	shift
	left=$((DEADLINE - $(date +%s)))
	((left > 5)) || die "time budget of ${BUDGET}s exhausted"
	((secs <= left)) || secs=$left
	timeout --kill-after=10 "$secs" "$@"
}

# --- helpers -----------------------------------------------------------------

# calc EXPR [VAR=VALUE...]: evaluates an awk expression, e.g. calc 'a/b' a=1 b=2.
calc() {
	local expr=$1 args=() kv
	shift
	for kv in "$@"; do args+=(-v "$kv"); done
	awk "${args[@]}" "BEGIN { printf \"%.3f\", $expr }"
}

# holds EXPR [VAR=VALUE...]: exit status 0 when the awk condition holds.
holds() {
	local expr=$1 args=() kv
	shift
	for kv in "$@"; do args+=(-v "$kv"); done
	awk "${args[@]}" "BEGIN { exit !($expr) }"
}

free_port() {
	local p i
	for i in $(seq 100); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# wait_ready URL PID LOGFILE: waits up to 15 s for URL to answer 200.
wait_ready() {
	local i
	for i in $(seq 150); do
		if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then
			return
		fi
		kill -0 "$2" 2>/dev/null || {
			cat "$3" >&2
			die "server (pid $2) exited before it was ready"
		}
		sleep 0.1
	done
	cat "$3" >&2
	die "$1 not ready after 15s"
}

# start_modgate NAME DATADIR LEVEL: starts modgate; sets MG_PID and MG_URL.
start_modgate() {
	local port
	port=$(free_port)
	MODGATE_DATA_DIR=$2 "$WORK/bin/modgate" serve -listen "127.0.0.1:$port" -log-level "$3" \
		>"$LOGS/$1.log" 2>&1 &
	MG_PID=$!
	PIDS+=("$MG_PID")
	MG_URL=http://127.0.0.1:$port
	wait_ready "$MG_URL/healthz" "$MG_PID" "$LOGS/$1.log"
}

# metric_file_sum FILE NAME FILTER: sums the samples of metric NAME whose
# labels contain FILTER in a saved /metrics answer.
metric_file_sum() {
	awk -v name="$2" -v filter="$3" 'index($0, name "{") == 1 && (filter == "" || index($0, filter)) { s += $NF }
		END { printf "%d", s }' "$1"
}

# metric_sum NAME FILTER: the same, against the running modgate.
metric_sum() {
	curl -fsS --max-time 10 "$MG_URL/metrics" >"$WORK/metrics.txt"
	metric_file_sum "$WORK/metrics.txt" "$1" "$2"
}

# miss_latency FILE: mean time modgate took to answer each kind of versioned
# file, from modgate_request_duration_seconds, e.g. "info 19ms, mod 43ms, zip 44ms".
miss_latency() {
	awk '
		/^modgate_request_duration_seconds_(sum|count)\{artifact="(info|mod|zip)"\}/ {
			split($1, a, "\""); kind = a[2]
			if ($1 ~ /_sum/) sum[kind] = $2; else cnt[kind] = $2
		}
		END {
			n = split("info mod zip", k, " ")
			for (i = 1; i <= n; i++) if (cnt[k[i]] > 0)
				printf "%s%s %.0fms", (out++ ? ", " : ""), k[i], 1000 * sum[k[i]] / cnt[k[i]]
		}' "$1"
}

ROWS=$WORK/rows.tsv
: >"$ROWS"
FAILED=0
# row METRIC MODGATE FLOOR RATIO TARGET VERDICT: one line of the summary table.
row() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"
	[[ $6 != FAIL ]] || FAILED=1
}
verdict() { if holds "$@"; then echo PASS; else echo FAIL; fi; }

# print_table: writes the summary table to $OUT and prints it.
print_table() {
	{
		echo "# modgate benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo
		echo "modgate $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
			"($(cd "$REPO" && git status --porcelain 2>/dev/null | grep -q . && echo 'dirty tree' || echo 'clean tree')), $(go version | cut -d' ' -f3-)," \
			"$(nproc) CPUs, work dir on $(df -P "$WORK" | awk 'NR == 2 { print $1 }')."
		[[ -z ${MODULES:-} ]] || echo "Large workload: $MODULES modules in go list -m all, $ZIPS zips; cache hits over ${NPATHS:--} .mod/.zip paths, ${DURATION:--} per wrk run."
		echo
		echo "| metric | modgate | floor | ratio | target | result |"
		echo "|---|---|---|---|---|---|"
		awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$ROWS"
		echo
		echo "Ratios are modgate / floor. Results in parentheses are reported, not gated; (info) rows have no target."
		echo "Total time: $(($(date +%s) - START))s."
	} >"$OUT"
	echo
	cat "$OUT"
	echo
	log "results written to $OUT"
}
# note_verdict: same as verdict, for rows that are reported but not gated.
note_verdict() { if holds "$@"; then echo "(pass)"; else echo "(fail)"; fi; }

# --- tools ---------------------------------------------------------------------

need_apt=()
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
command -v wrk >/dev/null || need_apt+=(wrk)
if ((${#need_apt[@]})); then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "installing ${need_apt[*]}"
		bounded 300 apt-get install -y "${need_apt[@]}" >"$LOGS/apt.log" 2>&1 ||
			die "apt-get install ${need_apt[*]} failed; see $LOGS/apt.log"
	else
		die "missing tools: ${need_apt[*]} (apt-get install -y ${need_apt[*]})"
	fi
fi
for tool in go curl sha256sum timeout awk; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done

# The upstream and checksum database are whatever the go command uses here;
# the benchmark never names them.
UPSTREAM=$(go env GOPROXY)
SUMDB=$(go env GOSUMDB)
NOSUMDB=$(go env GONOSUMDB)
PRIVATE=$(go env GOPRIVATE)
NOPROXY=$(go env GONOPROXY)
INSECURE=$(go env GOINSECURE)
[[ -n $UPSTREAM && $UPSTREAM != off ]] || die "go env GOPROXY is empty or off"

# --- build -----------------------------------------------------------------------

log "building modgate and the static file server"
(cd "$REPO" && bounded 300 go build -o "$WORK/bin/modgate" ./cmd/modgate) >"$LOGS/build.log" 2>&1 ||
	{
		cat "$LOGS/build.log" >&2
		die "building modgate failed"
	}
(cd "$REPO" && bounded 120 go build -o "$WORK/bin/static" ./bench/static) >>"$LOGS/build.log" 2>&1 ||
	{
		cat "$LOGS/build.log" >&2
		die "building bench/static failed"
	}

# dl PROXY MODCACHE [PROJECT]: `go mod download all` of a project copy
# (default the large one) with an environment that only the arguments vary,
# so that every download in the suite differs from its floor in the proxy
# alone. GOFLAGS is set here so that the machine's GOFLAGS (e.g. -mod=vendor
# or -mod=readonly) cannot change the module graph; -modcacherw lets the
# prepare step delete the cache.
PROJECT=$SCRATCH/project
cp -R "$BENCH_DIR/project" "$PROJECT"
cp -R "$BENCH_DIR/project-small" "$SCRATCH/project-small"
{
	echo '#!/usr/bin/env bash'
	echo 'set -euo pipefail'
	printf 'cd "${3:-%s}"\n' "$PROJECT"
	printf 'exec env GOPROXY="$1" GOMODCACHE="$2" GOSUMDB=%q GONOSUMDB=%q GOPRIVATE=%q GONOPROXY=%q GOINSECURE=%q ' \
		"$SUMDB" "$NOSUMDB" "$PRIVATE" "$NOPROXY" "$INSECURE"
	echo 'GOFLAGS="-mod=mod -modcacherw" GOTOOLCHAIN=local GOWORK=off GOVCS= go mod download all'
} >"$WORK/bin/dl"
chmod +x "$WORK/bin/dl"

# project_unchanged [NAME]: the go command must not have had to add anything
# to go.mod or go.sum; if it did, the committed go.sum is incomplete and
# downloads would consult the checksum database.
project_unchanged() {
	local name=${1:-project}
	cmp -s "$SCRATCH/$name/go.sum" "$BENCH_DIR/$name/go.sum" && cmp -s "$SCRATCH/$name/go.mod" "$BENCH_DIR/$name/go.mod" ||
		die "go mod download all changed bench/$name/go.mod or go.sum; regenerate them (README: Updating the project)"
}

# timed_dl NAME PROXY MODCACHE [PROJECT-NAME]: prints the wall time in seconds
# of one download.
timed_dl() {
	local t0 t1 name=${4:-project}
	t0=$(date +%s%N)
	bounded 420 "$WORK/bin/dl" "$2" "$3" "$SCRATCH/$name" >"$LOGS/$1.log" 2>&1 || {
		tail -20 "$LOGS/$1.log" >&2
		die "$1: go mod download all failed"
	}
	t1=$(date +%s%N)
	project_unchanged "$name"
	calc '(t1 - t0) / 1e9' t0="$t0" t1="$t1"
}

wipe() {
	chmod -R u+w "$1" 2>/dev/null || true
	rm -rf "$1"
}

# --- a. cold fill ------------------------------------------------------------------

# Workloads: NAME PROJECT-DIR ROUNDS. The small one is short and noisy, so it
# runs more rounds.
declare -A WL_PROJECT=([small]=project-small [large]=project)
declare -A WL_ROUNDS=([small]=${BENCH_COLD_ROUNDS:-4} [large]=${BENCH_COLD_ROUNDS:-2})
WORKLOADS=${BENCH_WORKLOADS:-small large}

# cold_direct W N: one download of workload W straight from the upstream;
# appends the time.
cold_direct() {
	local mc=$SCRATCH/mc-cold-direct-$1-$2 t
	t=$(timed_dl "cold-direct-$1-$2" "$UPSTREAM" "$mc" "${WL_PROJECT[$1]}")
	log "cold fill $1 $2, direct:  ${t}s"
	echo "$t" >>"$WORK/cold-direct-$1.txt"
	if [[ ! -s $WORK/size-$1.txt ]]; then
		# The size of the workload, from the cache just filled, offline.
		local modules zips bytes
		modules=$(cd "$SCRATCH/${WL_PROJECT[$1]}" && GOPROXY=off GOMODCACHE=$mc GOFLAGS=-mod=mod GOTOOLCHAIN=local GOWORK=off \
			bounded 60 go list -m all | wc -l)
		zips=$(find "$mc/cache/download" -name '*.zip' | wc -l)
		bytes=$(find "$mc/cache/download" -type f \( -name '*.zip' -o -name '*.mod' -o -name '*.info' \) -printf '%s\n' |
			awk '{ s += $1 } END { printf "%d", s }')
		echo "$modules $zips $bytes" >"$WORK/size-$1.txt"
	fi
	wipe "$mc"
}

# cold_modgate W N: one download of workload W through a new modgate with an
# empty data dir; appends the time, modgate's peak RSS and what it fetched.
# Sets DATA to its data dir.
cold_modgate() {
	local mc=$SCRATCH/mc-cold-modgate-$1-$2 t hwm fills ahead ub m=$LOGS/metrics-cold-$1-$2.txt
	DATA=$SCRATCH/data-cold-$1-$2
	start_modgate "modgate-cold-$1-$2" "$DATA" warn
	t=$(timed_dl "cold-modgate-$1-$2" "$MG_URL" "$mc" "${WL_PROJECT[$1]}")
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MG_PID/status")
	curl -fsS --max-time 10 "$MG_URL/metrics" >"$m"
	fills=$(metric_file_sum "$m" modgate_fills_total 'artifact="zip"')
	ahead=$(metric_file_sum "$m" modgate_prefetched_total 'artifact="zip"')
	ub=$(metric_file_sum "$m" modgate_upstream_bytes_total '')
	COLD_UPSTREAM=$(metric_file_sum "$m" modgate_upstream_request_duration_seconds_count '')
	COLD_SERVED=$(metric_file_sum "$m" modgate_requests_total 'status="200"')
	stop_pid "$MG_PID"
	log "cold fill $1 $2, modgate: ${t}s, VmHWM $((hwm / 1024)) MB, $fills zip fills ($ahead ahead)," \
		"$COLD_UPSTREAM upstream requests ($((ub / 1048576)) MB) for $COLD_SERVED files served," \
		"mean answer time $(miss_latency "$m")"
	echo "$t" >>"$WORK/cold-modgate-$1.txt"
	echo "$hwm" >>"$WORK/cold-hwm.txt"
	echo "$fills $ub $COLD_UPSTREAM $COLD_SERVED" >"$WORK/cold-fetched-$1.txt"
	wipe "$mc"
}

mean_of() { awk '{ s += $1; n++ } END { printf "%.3f", s / n }' "$1"; }
median_of() { sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
list_of() { awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }' "$1"; }
sd_of() { awk '{ s += $1; q += $1 * $1; n++ } END { m = s / n; v = q / n - m * m; printf "%.3f", (v > 0 ? sqrt(v) : 0) }' "$1"; }

PHASES=${BENCH_PHASES:-abcd}
if [[ -n ${BENCH_DATA:-} ]]; then
	# Phases b-d against an existing warm store instead of a cold fill's.
	[[ -d $BENCH_DATA/modules ]] || die "BENCH_DATA=$BENCH_DATA has no modules/ directory"
	DATA=$(cd "$BENCH_DATA" && pwd)
	PHASES=${PHASES//a/}
	MODULES="-"
	ZIPS=$(find "$DATA/modules" -path "$DATA/modules/sumdb" -prune -o -name '*.zip' -print | wc -l)
fi
if [[ $PHASES == *a* ]]; then # phase a (not indented, to keep the diff small)

: >"$WORK/cold-hwm.txt"
for w in $WORKLOADS; do
	[[ -n ${WL_PROJECT[$w]:-} ]] || die "BENCH_WORKLOADS: unknown workload $w (small, large)"
	: >"$WORK/cold-direct-$w.txt"
	: >"$WORK/cold-modgate-$w.txt"
	for i in $(seq "${WL_ROUNDS[$w]}"); do
		# Alternate the order, so that whichever run warms a cache on the
		# upstream's side does not always favour the same side.
		log "a. cold fill: $w, round $i"
		if ((i % 2)); then
			cold_direct "$w" "$i"
			cold_modgate "$w" "$i"
		else
			cold_modgate "$w" "$i"
			cold_direct "$w" "$i"
		fi
		# Keep the last store of each workload; the large one is the warm store.
		[[ $i == "${WL_ROUNDS[$w]}" ]] || wipe "$DATA"
	done
	eval "DATA_$w=\$DATA"
	read -r modules zips bytes <"$WORK/size-$w.txt"
	read -r fills ub ureq served <"$WORK/cold-fetched-$w.txt"
	cold_m=$(mean_of "$WORK/cold-modgate-$w.txt")
	cold_d=$(mean_of "$WORK/cold-direct-$w.txt")
	cold_r=$(calc 'm / d' m="$cold_m" d="$cold_d")
	row "cold fill, $w ($modules modules): go mod download all, s (mean of ${WL_ROUNDS[$w]})" \
		"$cold_m ($(list_of "$WORK/cold-modgate-$w.txt"))" \
		"$cold_d ($(list_of "$WORK/cold-direct-$w.txt"); direct)" "$cold_r" "≤ 1.00" \
		"$(verdict 'r <= 1.0' r="$cold_r")"
	row "cold fill, $w: median of the runs" "$(median_of "$WORK/cold-modgate-$w.txt")" \
		"$(median_of "$WORK/cold-direct-$w.txt") (direct)" \
		"$(calc 'm / d' m="$(median_of "$WORK/cold-modgate-$w.txt")" d="$(median_of "$WORK/cold-direct-$w.txt")")" "-" "(info)"
	row "cold fill, $w: upstream zip fetches / zips in project" "$fills" "$zips" \
		"$(calc 'f / z' f="$fills" z="$zips")" "= 1.00" "$(verdict 'f == z' f="$fills" z="$zips")"
	# Bytes: everything modgate received from the upstream (module files,
	# lists, checksum database lookups and tiles) against the module files
	# the go command stored when downloading directly.
	row "cold fill, $w: upstream MB received / MB the direct download stored" \
		"$(calc 'b / 1048576' b="$ub")" "$(calc 'b / 1048576' b="$bytes")" "$(calc 'u / b' u="$ub" b="$bytes")" "-" "(info)"
	row "cold fill, $w: upstream requests / files served (last round)" "$ureq" "$served (go command)" \
		"$(calc 'u / s' u="$ureq" s="$served")" "-" "(info)"
	if [[ $w == large ]]; then
		MODULES=$modules ZIPS=$zips
	fi
done
hwm_mb=$(awk '{ if ($1 > m) m = $1 } END { printf "%.1f", m / 1024 }' "$WORK/cold-hwm.txt")
row "cold fill: modgate peak RSS (VmHWM), MB, largest" "$hwm_mb" "-" "-" "< 100" "$(verdict 'm < 100' m="$hwm_mb")"
if [[ ${BENCH_COLD_ONLY:-0} == 1 ]]; then
	print_table
	exit $((FAILED ? 3 : 0))
fi
[[ -n ${DATA_large:-} ]] || die "the later phases need the large workload (BENCH_WORKLOADS includes large)"
DATA=$DATA_large
fi # phase a
[[ -n ${DATA:-} ]] || die "phases $PHASES need a data dir: run phase a or set BENCH_DATA"

# The static file server over the warm store: the floor of the cache-hit
# phase, and an extra (not gated) HTTP floor of the warm phase.
SPORT=$(free_port)
"$WORK/bin/static" -listen "127.0.0.1:$SPORT" -dir "$DATA/modules" >"$LOGS/static.log" 2>&1 &
STATIC_PID=$!
PIDS+=("$STATIC_PID")
STATIC_URL=http://127.0.0.1:$SPORT
wait_ready "$STATIC_URL/" "$STATIC_PID" "$LOGS/static.log"

# --- b. warm -----------------------------------------------------------------------

# median_of FILE: the median of the numbers in FILE, one a line.
median_of() {
	sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
# range_of FILE: "min–max" of the numbers in FILE.
range_of() { sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f–%.3f", lo, hi }'; }

if [[ $PHASES == *b* ]]; then
WARM_RUNS=${BENCH_WARM_RUNS:-7}
log "b. warm: $WARM_RUNS interleaved rounds of modgate, file:// floor and static HTTP server"
# modgate as a default `modgate serve` runs: audit log on, one access-log
# line per request at info level, to a file.
start_modgate modgate-warm "$DATA" info
MC=$SCRATCH/mc-warm
: >"$WORK/warm-modgate.txt"
: >"$WORK/warm-floor.txt"
: >"$WORK/warm-static.txt"
for i in $(seq "$WARM_RUNS"); do
	# Rotate the order, so that none of the three always runs first
	# (right after the previous round's page-cache churn).
	mg=(-n modgate "$WORK/bin/dl $MG_URL $MC")
	fl=(-n floor "$WORK/bin/dl file://$DATA/modules $MC")
	st=(-n static "$WORK/bin/dl $STATIC_URL $MC")
	case $((i % 3)) in
	1) cmds=("${mg[@]}" "${fl[@]}" "${st[@]}") ;;
	2) cmds=("${fl[@]}" "${st[@]}" "${mg[@]}") ;;
	0) cmds=("${st[@]}" "${mg[@]}" "${fl[@]}") ;;
	esac
	bounded 300 hyperfine -N --style basic --runs 1 --prepare "rm -rf $MC" \
		--export-csv "$WORK/warm-$i.csv" "${cmds[@]}" >"$LOGS/warm-$i.log" 2>&1 || {
		tail -20 "$LOGS/warm-$i.log" >&2
		die "warm round $i failed"
	}
	project_unchanged
	for name in modgate floor static; do
		awk -F, -v n="$name" '$1 == n { printf "%.3f\n", $2 }' "$WORK/warm-$i.csv" >>"$WORK/warm-$name.txt"
	done
	log "warm round $i: modgate $(tail -1 "$WORK/warm-modgate.txt")s," \
		"file:// $(tail -1 "$WORK/warm-floor.txt")s, static HTTP $(tail -1 "$WORK/warm-static.txt")s"
done
wipe "$MC"
warm_m=$(median_of "$WORK/warm-modgate.txt")
warm_f=$(median_of "$WORK/warm-floor.txt")
warm_s=$(median_of "$WORK/warm-static.txt")
warm_r=$(calc 'm / f' m="$warm_m" f="$warm_f")
warm_rs=$(calc 'm / f' m="$warm_m" f="$warm_s")
row "warm: go mod download all, s (median of $WARM_RUNS, range)" "$warm_m ($(range_of "$WORK/warm-modgate.txt"))" \
	"$warm_f ($(range_of "$WORK/warm-floor.txt"); file://)" "$warm_r" "≤ 1.02" "$(verdict 'r <= 1.02' r="$warm_r")"
row "warm: same, against the static HTTP server" "$warm_m" \
	"$warm_s ($(range_of "$WORK/warm-static.txt"); static)" "$warm_rs" "≤ 1.02" "$(note_verdict 'r <= 1.02' r="$warm_rs")"
stop_pid "$MG_PID"
fi # phase b

# --- c. cache-hit throughput -----------------------------------------------------------

if [[ $PHASES == *c* ]]; then
DURATION=${BENCH_WRK_DURATION:-10s}
PATHS=$WORK/paths.txt
(cd "$DATA/modules" && find . -path ./sumdb -prune -o -type f -path '*/@v/*' \( -name '*.mod' -o -name '*.zip' \) -print) |
	sed 's|^\.||' | sort >"$PATHS"
NPATHS=$(wc -l <"$PATHS")
((NPATHS > 0)) || die "no .mod or .zip files in $DATA/modules"
log "c. cache hits: $NPATHS paths, $DURATION per run"


# cpu_ticks PID: user + system CPU time of PID, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# wrk_run NAME URL CONNS PATHSFILE PID: one wrk run against the server PID;
# prints "rps p99_us cpu_us_per_request".
wrk_run() {
	local line c0 c1
	c0=$(cpu_ticks "$5")
	BENCH_PATHS=$4 bounded 120 wrk -t2 -c"$3" -d"$DURATION" --timeout 10s -s "$BENCH_DIR/wrk.lua" "$2" \
		>"$LOGS/wrk-$1.log" 2>&1 || {
		cat "$LOGS/wrk-$1.log" >&2
		die "wrk $1 failed"
	}
	c1=$(cpu_ticks "$5")
	line=$(grep '^BENCH ' "$LOGS/wrk-$1.log") || die "wrk $1: no BENCH line in $LOGS/wrk-$1.log"
	[[ $line == *" errors=0 status_errors=0" ]] || die "wrk $1: requests failed: $line"
	awk -v ticks=$((c1 - c0)) -v tick_us="$TICK_US" '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%s %s %.1f\n", v["rps"], v["p99_us"], ticks * tick_us / v["requests"]
	}' <<<"$line"
}

# first_pass NAME URL: requests every path once (4 at a time) and prints the
# seconds it took. A modgate just started checks each stored file against
# the checksum database the first time it serves it (the integrity guard,
# see README), so the timed runs start after this pass, which is reported
# on its own.
first_pass() {
	local t0 t1
	sed "s|^|url = \"$2|; s|\$|\"\noutput = \"/dev/null\"|" "$PATHS" >"$WORK/first-$1.curl"
	t0=$(date +%s%N)
	bounded 300 curl -fsS -Z --parallel-max 4 -K "$WORK/first-$1.curl" >"$LOGS/first-$1.log" 2>&1 || {
		tail -5 "$LOGS/first-$1.log" >&2
		die "first pass over the paths failed against $1"
	}
	t1=$(date +%s%N)
	calc '(t1 - t0) / 1e9' t0="$t0" t1="$t1"
}

# field N "A B C": the Nth of the space-separated words.
field() { awk -v n="$1" '{ print $n }' <<<"$2"; }

# median3 "A B C": the median of three numbers.
median3() { tr ' ' '\n' <<<"$1" | sort -g | sed -n 2p; }

# throughput SLUG LABEL LEVEL CONNS PATHSFILE GATED: three runs each of
# modgate (at log level LEVEL, already running as MG_PID) and the static
# server, interleaved M S S M M S so that drift hits both alike; adds rows for
# the medians of req/s, p99 latency and server CPU per request, gated
# (req/s ≥ 1.00, p99 and CPU ≤ 1.00) when GATED is 1.
throughput() {
	local slug=$1 label=$2 level=$3 conns=$4 paths=$5 gated=$6
	local tag=$1-$3-$4 order=(m s s m m s) i=0 who out
	local rps_m=() rps_s=() p99_m=() p99_s=() cpu_m=() cpu_s=()
	local m_rps s_rps m_p99 s_p99 m_cpu s_cpu r_rps r_p99 r_cpu v1 v2 v3 name
	for who in "${order[@]}"; do
		i=$((i + 1))
		if [[ $who == m ]]; then
			out=$(wrk_run "modgate-$tag-$i" "$MG_URL" "$conns" "$paths" "$MG_PID")
			rps_m+=("$(field 1 "$out")") p99_m+=("$(field 2 "$out")") cpu_m+=("$(field 3 "$out")")
		else
			out=$(wrk_run "static-$tag-$i" "$STATIC_URL" "$conns" "$paths" "$STATIC_PID")
			rps_s+=("$(field 1 "$out")") p99_s+=("$(field 2 "$out")") cpu_s+=("$(field 3 "$out")")
		fi
	done
	m_rps=$(median3 "${rps_m[*]}") s_rps=$(median3 "${rps_s[*]}")
	m_p99=$(calc 'v / 1000' v="$(median3 "${p99_m[*]}")") s_p99=$(calc 'v / 1000' v="$(median3 "${p99_s[*]}")")
	m_cpu=$(median3 "${cpu_m[*]}") s_cpu=$(median3 "${cpu_s[*]}")
	r_rps=$(calc 'm / s' m="$m_rps" s="$s_rps")
	r_p99=$(calc 'm / s' m="$m_p99" s="$s_p99")
	r_cpu=$(calc 'm / s' m="$m_cpu" s="$s_cpu")
	log "cache hits, $label, log $level, $conns conns: modgate req/s ${rps_m[*]}, p99 µs ${p99_m[*]}," \
		"CPU µs/req ${cpu_m[*]}; static req/s ${rps_s[*]}, p99 µs ${p99_s[*]}, CPU µs/req ${cpu_s[*]}"
	if [[ $gated == 1 ]]; then
		v1=$(verdict 'r >= 1.0' r="$r_rps")
		v2=$(verdict 'r <= 1.0' r="$r_p99")
		v3=$(verdict 'r <= 1.0' r="$r_cpu")
	else
		v1=$(note_verdict 'r >= 1.0' r="$r_rps")
		v2=$(note_verdict 'r <= 1.0' r="$r_p99")
		v3=$(note_verdict 'r <= 1.0' r="$r_cpu")
	fi
	name="cache hits, $label, $conns conns, log $level"
	row "$name: req/s (median of 3)" "$m_rps" "$s_rps (static)" "$r_rps" "≥ 1.00" "$v1"
	row "$name: p99 latency, ms (median of 3)" "$m_p99" "$s_p99 (static)" "$r_p99" "≤ 1.00" "$v2"
	row "$name: server CPU per request, µs (median of 3)" "$m_cpu" "$s_cpu (static)" "$r_cpu" "≤ 1.00" "$v3"
}

grep '\.mod$' "$PATHS" >"$WORK/paths-mod.txt" || true
# modgate with its defaults, as in phase b: the audit log on and one
# access-log line per request (info) written to a file, as a service
# manager would.
start_modgate modgate-hits-info "$DATA" info
first_pass modgate "$MG_URL" >"$WORK/first-modgate.txt"
first_pass static "$STATIC_URL" >"$WORK/first-static.txt"
f_m=$(cat "$WORK/first-modgate.txt") f_s=$(cat "$WORK/first-static.txt")
row "cache hits: first pass over the $NPATHS paths after a start, s" "$f_m" "$f_s (static)" \
	"$(calc 'm / s' m="$f_m" s="$f_s")" "-" "(info)"
throughput mixed ".mod+.zip" info 16 "$PATHS" 1
throughput mixed ".mod+.zip" info 64 "$PATHS" 1
if [[ ${BENCH_WRK_MOD:-1} == 1 && -s $WORK/paths-mod.txt ]]; then
	# Small files only: the per-request cost without the copying of zips.
	throughput modonly ".mod only" info 16 "$WORK/paths-mod.txt" 0
fi
stop_pid "$MG_PID"
if [[ ${BENCH_WRK_WARN:-0} == 1 ]]; then
	# Without the access log: what its lines cost, reported but not gated.
	start_modgate modgate-hits-warn "$DATA" warn
	throughput mixed ".mod+.zip" warn 16 "$PATHS" 0
	throughput mixed ".mod+.zip" warn 64 "$PATHS" 0
	stop_pid "$MG_PID"
fi
fi # phase c
stop_pid "$STATIC_PID"

# --- d. stampede --------------------------------------------------------------------

if [[ $PHASES == *d* ]]; then # (not indented, to keep the diff small)
N=64
# One zip of the project, of middling size (the largest under 8 MB) so that
# the upstream fetch is long enough for all requests to overlap it.
ZIP=$(cd "$DATA/modules" && find . -path ./sumdb -prune -o -type f -name '*.zip' -size -8M -printf '%s %P\n' |
	sort -n | tail -1 | cut -d' ' -f2-)
[[ -n $ZIP ]] || die "no zip to stampede on"
log "d. stampede: $N concurrent requests for /$ZIP on an empty data dir"
start_modgate modgate-stampede "$SCRATCH/data-stampede" warn
STAMPEDE=$SCRATCH/stampede
mkdir -p "$STAMPEDE"
for i in $(seq "$N"); do
	printf 'url = "%s/%s"\noutput = "%s/%d.zip"\n' "$MG_URL" "$ZIP" "$STAMPEDE" "$i"
done >"$WORK/stampede.curl"
bounded 180 curl -sS -Z --parallel-max "$N" --parallel-immediate --max-time 150 \
	-w '%{http_code}\n' -K "$WORK/stampede.curl" >"$WORK/stampede-codes.txt" 2>"$LOGS/stampede-curl.log" || true
ok=$(grep -c '^200$' "$WORK/stampede-codes.txt" || true)
sums=$( (cd "$STAMPEDE" && sha256sum -- *.zip 2>/dev/null) | awk '{ print $1 }' | sort -u)
distinct=$(grep -c . <<<"$sums" || true)
want=$(sha256sum "$DATA/modules/$ZIP" | awk '{ print $1 }')
[[ $distinct == 1 && $sums == "$want" ]] && same=yes || same=no
sfills=$(metric_sum modgate_fills_total 'artifact="zip"')
stop_pid "$MG_PID"
log "stampede: $ok/$N answered 200, $distinct distinct body hash(es), identical to the warm store: $same, $sfills zip fill(s)"
row "stampede: upstream zip fetches for $N concurrent requests" "$sfills" "-" "-" "= 1" "$(verdict 'f == 1' f="$sfills")"
row "stampede: 200 answers with identical bytes" "$ok/$N, identical: $same" "-" "-" "= $N/$N, yes" \
	"$(verdict 'ok == n && s == "yes"' ok="$ok" n="$N" s="$same")"
fi # phase d

# --- summary ------------------------------------------------------------------------

print_table
if ((FAILED)); then
	exit 3
fi
