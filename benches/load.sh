#!/usr/bin/env bash
# Load test of `portcullis serve` over TLS, next to a no-op webhook on the same stack
# (examples/noop_webhook.rs), so every figure is also a ratio to the machine's limit measured
# in the same run. Method and results: BENCHMARKS.md.
#
#   bash benches/load.sh
#
# Knobs (environment):
#   DURATION=10s        length of each load phase (oha -z)
#   CONNECTIONS=16      HTTP/1.1 keep-alive connections for the maximum-throughput phase
#   H2_CONNECTIONS=2    HTTP/2 connections for the maximum-throughput phase ...
#   H2_STREAMS=8        ... and concurrent streams on each (oha -p)
#   RATE=2000           requests/s of the fixed-rate phase (HTTP/1.1, keep-alive)
#   RATE_CONNECTIONS=16 connections of the fixed-rate phase
#   RUNS=3              repetitions; the table shows medians
#   ENDPOINTS="validate mutate"
#   VALIDATE_BODY, MUTATE_BODY  AdmissionReview files sent (default: the captured Deployment
#                       CREATE reviews in tests/fixtures/admission/)
#   POLICIES=policies   policy directory served
#   PORTCULLIS_ENV      extra environment for `portcullis serve`, e.g. "PORTCULLIS_LOG=warn"
#   BASELINE=path       another `portcullis` binary (e.g. a build of an earlier commit), served
#                       beside the others and driven by the same phases, so a change and its
#                       baseline are measured side by side in one run
#   SKIP_BUILD=1        use the binaries already in target/release
#   OUT=target/load     where certificates, logs and oha's JSON results go
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
H2_CONNECTIONS=${H2_CONNECTIONS:-2}
H2_STREAMS=${H2_STREAMS:-8}
RATE=${RATE:-2000}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-16}
RUNS=${RUNS:-3}
ENDPOINTS=${ENDPOINTS:-"validate mutate"}
VALIDATE_BODY=${VALIDATE_BODY:-$ROOT/tests/fixtures/admission/validate-create-deployment.json}
MUTATE_BODY=${MUTATE_BODY:-$ROOT/tests/fixtures/admission/mutate-create-deployment.json}
POLICIES=${POLICIES:-$ROOT/policies}
PORTCULLIS_ENV=${PORTCULLIS_ENV:-}
OUT=${OUT:-$ROOT/target/load}

WEBHOOK_PORT=18443 WEBHOOK_ADMIN=18080
BASELINE_PORT=17443 BASELINE_ADMIN=17080
BASELINE=${BASELINE:-}
NOOP_PORT=19443 NOOP_ADMIN=19080

say() { printf '== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 2; }
if ! command -v oha >/dev/null; then
    if [[ -x $HOME/.cargo/bin/oha ]]; then
        PATH=$HOME/.cargo/bin:$PATH
    else
        say "installing oha (cargo install oha --locked)"
        cargo install oha --locked
        PATH=$HOME/.cargo/bin:$PATH
    fi
fi

if [[ -z ${SKIP_BUILD:-} ]]; then
    say "building release binaries"
    cargo build --release --locked --bin portcullis --example noop_webhook
fi
PORTCULLIS=$ROOT/target/release/portcullis
NOOP=$ROOT/target/release/examples/noop_webhook
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.txt

# --- certificates: generated once by `serve` itself, then passed as files ----------------
CERTS=$OUT/certs
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start NAME -- COMMAND...: starts COMMAND (stderr to $OUT/NAME.log), waits for its /readyz,
# writes the milliseconds from process start to ready into $OUT/NAME.ready.txt and the PID
# into $OUT/NAME.pid.txt.
start() {
    local name=$1 admin=$2
    shift 3
    python3 - "$OUT/$name" "$admin" "$@" <<'PY'
import subprocess, sys, time, urllib.request
out, admin, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
log = open(out + ".log", "ab")
started = time.monotonic()
proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
while True:
    if proc.poll() is not None:
        sys.exit(f"{cmd[0]} exited with {proc.returncode} before it was ready: see {out}.log")
    try:
        with urllib.request.urlopen(f"http://{admin}/readyz", timeout=1) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() - started > 30:
        proc.kill()
        sys.exit(f"{cmd[0]} not ready after 30 s: see {out}.log")
    time.sleep(0.001)
ready_ms = (time.monotonic() - started) * 1000
open(out + ".ready.txt", "w").write(f"{ready_ms:.1f}\n")
open(out + ".pid.txt", "w").write(f"{proc.pid}\n")
PY
    PIDS+=("$(cat "$OUT/$name.pid.txt")")
}

stop() {
    local pid
    pid=$(cat "$OUT/$1.pid.txt")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# Peak resident set size of a running process, KiB.
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$(cat "$OUT/$1.pid.txt")/status"; }

serve_cmd=(env $PORTCULLIS_ENV "$PORTCULLIS" serve --policies "$POLICIES"
    --addr "127.0.0.1:$WEBHOOK_PORT" --admin-addr "127.0.0.1:$WEBHOOK_ADMIN")
say "generating development certificates in $CERTS"
rm -rf "$CERTS"
start certs "127.0.0.1:$WEBHOOK_ADMIN" -- "${serve_cmd[@]}" --dev-cert-dir "$CERTS"
stop certs
serve_cmd+=(--tls-cert "$CERTS/tls.crt" --tls-key "$CERTS/tls.key")
baseline_cmd=(env $PORTCULLIS_ENV "$BASELINE" serve --policies "$POLICIES"
    --addr "127.0.0.1:$BASELINE_PORT" --admin-addr "127.0.0.1:$BASELINE_ADMIN"
    --tls-cert "$CERTS/tls.crt" --tls-key "$CERTS/tls.key")
TARGETS="webhook noop"
[[ -n $BASELINE ]] && TARGETS="webhook baseline noop"
noop_cmd=("$NOOP" --addr "127.0.0.1:$NOOP_PORT" --admin-addr "127.0.0.1:$NOOP_ADMIN"
    --tls-cert "$CERTS/tls.crt" --tls-key "$CERTS/tls.key")

body_of() { if [[ $1 == validate ]]; then echo "$VALIDATE_BODY"; else echo "$MUTATE_BODY"; fi; }

# Checks once that an endpoint answers the body with a review carrying the request's uid.
check_answer() {
    local port=$1 endpoint=$2 body uid
    body=$(body_of "$endpoint")
    uid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["request"]["uid"])' "$body")
    curl -sf --cacert "$CERTS/ca.crt" -H 'Content-Type: application/json' \
        --data-binary "@$body" "https://localhost:$port/$endpoint" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["response"]; assert r["uid"]==sys.argv[1], r; print(("allowed" if r["allowed"] else "denied"), ("patched" if r.get("patch") else ""))' "$uid"
}

# load NAME PORT ENDPOINT OHA-ARGS...: one oha run, JSON result in $OUT/NAME.json.
load() {
    local name=$1 port=$2 endpoint=$3
    shift 3
    oha --no-tui --output-format json --insecure -w -m POST -H 'Content-Type: application/json' \
        -D "$(body_of "$endpoint")" "$@" "https://127.0.0.1:$port/$endpoint" >"$OUT/$name.json"
}

say "load: $RUNS runs of ${DURATION} per phase; $(nproc) CPUs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
    start "webhook.$run" "127.0.0.1:$WEBHOOK_ADMIN" -- "${serve_cmd[@]}"
    start "noop.$run" "127.0.0.1:$NOOP_ADMIN" -- "${noop_cmd[@]}"
    [[ -n $BASELINE ]] && start "baseline.$run" "127.0.0.1:$BASELINE_ADMIN" -- "${baseline_cmd[@]}"
    say "run $run: ready after $(cat "$OUT/webhook.$run.ready.txt") ms (webhook), $(cat "$OUT/noop.$run.ready.txt") ms (no-op)"
    for endpoint in $ENDPOINTS; do
        if [[ $run == 1 ]]; then
            say "/$endpoint answers: webhook $(check_answer $WEBHOOK_PORT "$endpoint"), no-op $(check_answer $NOOP_PORT "$endpoint")"
        fi
        # The two servers take turns phase by phase, so background load hits both alike.
        for target in $TARGETS; do
            port=$WEBHOOK_PORT
            [[ $target == noop ]] && port=$NOOP_PORT
            [[ $target == baseline ]] && port=$BASELINE_PORT
            say "run $run: $target /$endpoint: HTTP/1.1, HTTP/2, ${RATE} req/s"
            load "$target.$run.$endpoint.h1" "$port" "$endpoint" -z "$DURATION" -c "$CONNECTIONS"
            load "$target.$run.$endpoint.h2" "$port" "$endpoint" -z "$DURATION" --http2 \
                -c "$H2_CONNECTIONS" -p "$H2_STREAMS"
            load "$target.$run.$endpoint.rate" "$port" "$endpoint" -z "$DURATION" -q "$RATE" \
                -c "$RATE_CONNECTIONS" --latency-correction
        done
    done
    peak_rss_kib "webhook.$run" >"$OUT/webhook.$run.rss.txt"
    peak_rss_kib "noop.$run" >"$OUT/noop.$run.rss.txt"
    stop "webhook.$run"
    stop "noop.$run"
    if [[ -n $BASELINE ]]; then
        peak_rss_kib "baseline.$run" >"$OUT/baseline.$run.rss.txt"
        stop "baseline.$run"
    fi
done

python3 - "$OUT" "$RUNS" "$RATE" "$ENDPOINTS" <<'PY'
import json, statistics, sys
out, runs, rate, endpoints = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()

seen = {}
def result(target, run, endpoint, phase):
    name = f"{out}/{target}.{run}.{endpoint}.{phase}.json"
    if name in seen:
        return seen[name]
    r = seen[name] = json.load(open(name))
    codes = r.get("statusCodeDistribution", {})
    bad = {k: v for k, v in codes.items() if k != "200"}
    errors = r.get("errorDistribution", {})
    if bad or errors:
        print(f"warning: {target} run {run} /{endpoint} {phase}: status {bad} errors {errors}",
              file=sys.stderr)
    return r

def median(values):
    return statistics.median(values)

def text(target, run, name):
    return float(open(f"{out}/{target}.{run}.{name}.txt").read())

import os
with_baseline = os.path.exists(f"{out}/baseline.1.rss.txt")

def med(target, f):
    if target == "baseline" and not with_baseline:
        return None
    return median([f(target, i) for i in range(1, runs + 1)])

rows = []  # (label, webhook, baseline or None, noop, unit, target, met)
for endpoint in endpoints:
    for phase, label in (("h1", "HTTP/1.1 max"), ("h2", "HTTP/2 max")):
        w, b, n = (med(t, lambda t, i: result(t, i, endpoint, phase)["summary"]["requestsPerSec"])
                   for t in ("webhook", "baseline", "noop"))
        rows.append((f"/{endpoint} {label}", w, b, n, "req/s", "≥ 50% of no-op", w / n >= 0.5))
    for pct, key in (("p50", "p50"), ("p99", "p99"), ("p99.9", "p99.9")):
        w, b, n = (med(t, lambda t, i: result(t, i, endpoint, "rate")["latencyPercentiles"][key] * 1000)
                   for t in ("webhook", "baseline", "noop"))
        check = pct == "p99"
        rows.append((f"/{endpoint} {rate} req/s {pct}", w, b, n, "ms", "≤ 2 ms" if check else "", (w <= 2.0) if check else None))
    w, b, n = (med(t, lambda t, i: result(t, i, endpoint, "rate")["summary"]["requestsPerSec"])
               for t in ("webhook", "baseline", "noop"))
    rows.append((f"/{endpoint} {rate} req/s achieved", w, b, n, "req/s", "", None))
w, b, n = (med(t, lambda t, i: text(t, i, "rss") / 1024) for t in ("webhook", "baseline", "noop"))
rows.append(("peak RSS (VmHWM)", w, b, n, "MiB", "≤ 30 MiB", w <= 30))
w, b, n = (med(t, lambda t, i: text(t, i, "ready")) for t in ("webhook", "noop", "noop"))
rows.append(("start to /readyz", w, None, n, "ms", "≤ 100 ms", w <= 100))

print(f"\nmedians of {runs} run(s)")
head = f"{'':34} {'portcullis':>12}"
if with_baseline:
    head += f" {'baseline':>12} {'ratio':>7}"
print(head + f" {'no-op':>12} {'ratio':>7}  {'':6} target")
for label, w, b, n, unit, target, ok in rows:
    digits = 3 if unit == "ms" else 1
    ratio = w / n if n else float("nan")
    mark = "" if ok is None else ("ok" if ok else "MISSED")
    line = f"{label:34} {w:12.{digits}f}"
    if with_baseline:
        line += f" {b:12.{digits}f} {w / b:7.2f}" if b is not None else f" {'':12} {'':7}"
    print(line + f" {n:12.{digits}f} {ratio:7.2f}  {unit:6} {target} {mark}")
PY
