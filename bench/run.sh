#!/usr/bin/env bash
# connscope performance benchmark: load generation against oha and wrk, the bundled mock against
# nginx, measurement overhead, new-connection-per-request and memory. All on loopback; every run is
# bounded (DURATION each). Figures are ratios measured in this one run, because the machine is shared.
# Each throughput cell runs ROUNDS rounds of the tools in turn and reports the median (and range):
# unpinned, one run alone is at the mercy of where the scheduler puts the threads (the same wrk
# run against nginx read 165k and 358k req/s within minutes).
#
#   bash bench/run.sh                      # full run (~13 min on 2 cores)
#   DURATION=2 ROUNDS=1 bash bench/run.sh  # a quick look
#
# Installs what it needs on a fresh machine: wrk, nginx-light, GNU time (Debian) and oha (cargo).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SHORT=${SHORT:-10} # the two memory runs
LONG=${LONG:-60}
DRAIN=${DRAIN:-61} # seconds to let TIME_WAIT sockets expire between the two new-connection runs
MOCK_PORT=18080
NGINX_PORT=18081
WORK=$(mktemp -d /tmp/connscope-bench.XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "$@" >&2; }

install_tools() {
  local need=()
  command -v wrk >/dev/null || need+=(wrk)
  command -v nginx >/dev/null || need+=(nginx-light)
  [ -x /usr/bin/time ] || need+=(time)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v ss >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if ! command -v oha >/dev/null; then
    log "installing oha (cargo install oha --locked; takes a few minutes)"
    cargo install oha --locked -q
  fi
  export PATH="$HOME/.cargo/bin:$PATH"
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  log "nothing listens on port $1"
  exit 1
}

# start_servers PIN: PIN is "" or a taskset prefix such as "taskset -c 0"
start_servers() {
  local pin=$1 threads=$2 nginx_workers=$3
  printf 'threads = %s\n' "$threads" >"$WORK/mock.toml"
  (exec $pin ./target/release/connscope mock --listen 127.0.0.1:$MOCK_PORT --config "$WORK/mock.toml" 2>/dev/null) &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx.conf" <<EOF
worker_processes $nginx_workers;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    # reuseport: a listening socket per worker, so connections spread by hash. Without it a
    # worker often took every connection of one client thread, and unpinned runs swung 2x with
    # whether the scheduler put that pair on one core (wrk at c=16: 156k-361k req/s).
    listen 127.0.0.1:$NGINX_PORT reuseport;
    location / { return 200 "ok"; }
  }
}
EOF
  (exec $pin nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" 2>/dev/null) &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port $MOCK_PORT
  wait_port $NGINX_PORT
}

stop_servers() {
  kill "$MOCK_PID" "$NGINX_PID" 2>/dev/null || true
  wait "$MOCK_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
}

# Each run prints "RPS P50_MS P99_MS".
run_connscope() { # url conc pin threads extra...
  local url=$1 c=$2 pin=$3 threads=$4
  shift 4
  $pin ./target/release/connscope quick "$url" -c "$c" -z "${DURATION}s" --threads "$threads" --json "$@" 2>/dev/null |
    python3 -c 'import json,sys; p=json.load(sys.stdin)["profiles"][0]["derived"]; l=p["latency"]; print(p["rps"], "%.3f" % (l["p50_us"]/1e3), "%.3f" % (l["p99_us"]/1e3))'
}

run_oha() { # url conc pin
  local url=$1 c=$2 pin=$3
  $pin oha --no-tui --output-format json -c "$c" -z "${DURATION}s" "$url" 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["summary"]; p=d["latencyPercentiles"]; print(round(s["requestsPerSec"],1), "%.3f" % (p["p50"]*1e3), "%.3f" % (p["p99"]*1e3))'
}

run_wrk() { # url conc pin threads extra...
  local url=$1 c=$2 pin=$3 threads=$4
  shift 4
  $pin wrk -t"$threads" -c"$c" -d"${DURATION}s" --latency "$@" "$url" 2>/dev/null | python3 -c '
import re, sys
text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
print(rps, "%.3f" % ms(p["50"]), "%.3f" % ms(p["99"]))'
}

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }

# median FILE: of the "RPS P50 P99" lines in FILE, prints "RPS MIN-MAX P50 P99" (medians).
median() {
  python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
rps, p50, p99 = (statistics.median(c) for c in zip(*rows))
lo, hi = min(r[0] for r in rows), max(r[0] for r in rows)
print(f"{rps:.0f} {lo/1e3:.0f}k-{hi/1e3:.0f}k {p50:.3f} {p99:.3f}")' "$1"
}

row() { printf '%-36s %10s %13s %8s %8s\n' "$@"; }

# median_row LABEL FILE: prints FILE's medians as a row; MEDIAN holds its req/s afterwards.
median_row() {
  local range p50 p99
  read -r MEDIAN range p50 p99 <<<"$(median "$2")"
  row "$1" "$MEDIAN" "$range" "$p50" "$p99"
}

throughput_table() { # label pin-server pin-client client-threads
  local label=$1 spin=$2 cpin=$3 cthreads=$4
  echo
  echo "## keep-alive throughput, $label; median of $ROUNDS rounds"
  row "run" "req/s" "range" "p50 ms" "p99 ms"
  for target in mock nginx; do
    local url
    if [ $target = mock ]; then url=http://127.0.0.1:$MOCK_PORT/; else url=http://127.0.0.1:$NGINX_PORT/; fi
    for c in 16 128; do
      rm -f "$WORK"/cell-*
      # Alternate the tools, round after round, so drift hits all alike.
      for _ in $(seq "$ROUNDS"); do
        run_connscope "$url" "$c" "$cpin" "$cthreads" >>"$WORK/cell-connscope"
        run_oha "$url" "$c" "$cpin" >>"$WORK/cell-oha"
        run_wrk "$url" "$c" "$cpin" "$cthreads" >>"$WORK/cell-wrk"
      done
      local cs oh wr
      median_row "connscope  $target c=$c" "$WORK/cell-connscope"
      cs=$MEDIAN
      median_row "oha        $target c=$c" "$WORK/cell-oha"
      oh=$MEDIAN
      median_row "wrk        $target c=$c" "$WORK/cell-wrk"
      wr=$MEDIAN
      echo "  ratio connscope/oha = $(ratio "$cs" "$oh"), connscope/wrk = $(ratio "$cs" "$wr")"
    done
  done
}

# The mock against nginx under the same wrk load, the two runs back to back in every round (the
# throughput table runs them minutes apart).
mock_vs_nginx() { # label pin-client client-threads
  local label=$1 cpin=$2 cthreads=$3
  echo
  echo "## the mock against nginx under wrk, $label; median of $ROUNDS rounds"
  row "run" "req/s" "range" "p50 ms" "p99 ms"
  for c in 16 128; do
    rm -f "$WORK"/cell-*
    for _ in $(seq "$ROUNDS"); do
      run_wrk "http://127.0.0.1:$MOCK_PORT/" "$c" "$cpin" "$cthreads" >>"$WORK/cell-mock"
      run_wrk "http://127.0.0.1:$NGINX_PORT/" "$c" "$cpin" "$cthreads" >>"$WORK/cell-nginx"
    done
    local m n
    median_row "wrk → mock  c=$c" "$WORK/cell-mock"
    m=$MEDIAN
    median_row "wrk → nginx c=$c" "$WORK/cell-nginx"
    n=$MEDIAN
    echo "  mock/nginx = $(ratio "$m" "$n")"
  done
}

main() {
  install_tools
  log "building connscope (release)"
  cargo build --release -q
  echo "# connscope benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION}s per run, $ROUNDS rounds"
  echo "# $(./target/release/connscope --version), $(oha --version 2>/dev/null | head -1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1)"

  local cores
  cores=$(nproc)
  start_servers "" "$cores" "$cores"
  throughput_table "unpinned (client and server share $cores cores)" "" "" "$cores"
  mock_vs_nginx "unpinned" "" "$cores"

  echo
  echo "## measurement overhead (mock, c=128, unpinned); median of $ROUNDS rounds"
  row "run" "req/s" "range" "p50 ms" "p99 ms"
  rm -f "$WORK"/cell-*
  for _ in $(seq "$ROUNDS"); do
    run_connscope "http://127.0.0.1:$MOCK_PORT/" 128 "" "$cores" >>"$WORK/cell-full"
    run_connscope "http://127.0.0.1:$MOCK_PORT/" 128 "" "$cores" --no-sockets >>"$WORK/cell-lean"
  done
  local full lean
  median_row "full (phases + socket sampling)" "$WORK/cell-full"
  full=$MEDIAN
  median_row "without socket sampling" "$WORK/cell-lean"
  lean=$MEDIAN
  echo "  full/lean = $(ratio "$full" "$lean")"

  echo
  echo "## new connection per request (mock, c=16)"
  printf '%-36s %10s %13s %8s %14s\n' "run" "req/s" "" "p50 ms" "peak TIME_WAIT"
  local tw_file=$WORK/tw
  sample_tw() { local peak=0 n; while kill -0 "$1" 2>/dev/null; do n=$(ss -tan state time-wait | tail -n +2 | wc -l); [ "$n" -gt "$peak" ] && peak=$n; sleep 0.5; done; echo "$peak" >"$tw_file"; }
  ./target/release/connscope quick "http://127.0.0.1:$MOCK_PORT/" -c 16 -z "${SHORT}s" --disable-keepalive --json 2>/dev/null >"$WORK/nc.json" &
  local pid=$!
  PIDS+=("$pid")
  sample_tw "$pid"
  wait "$pid" || true
  read -r ncr nc50 <<<"$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["profiles"][0]["derived"]; print(p["rps"], p["latency"]["p50_us"]/1e3)' "$WORK/nc.json")"
  printf '%-36s %10s %13s %8s %14s\n' "connscope --disable-keepalive" "$ncr" "" "$nc50" "$(cat "$tw_file")"
  sleep "$DRAIN" # let TIME_WAIT drain so wrk starts from the same state
  wrk -t2 -c16 -d"${SHORT}s" --latency -H "Connection: close" "http://127.0.0.1:$MOCK_PORT/" >"$WORK/wrk-close.txt" 2>/dev/null &
  pid=$!
  PIDS+=("$pid")
  sample_tw "$pid"
  wait "$pid" || true
  printf '%-36s %10s %13s %8s %14s\n' "wrk -H 'Connection: close'" "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk-close.txt")" "" "" "$(cat "$tw_file")"
  echo "  (connscope closes first, so TIME_WAIT is on the client's ports; with Connection: close the server closes first)"

  echo
  echo "## memory (max RSS of connscope quick, mock, c=128)"
  local short long
  /usr/bin/time -f '%M' -o "$WORK/rss-short" ./target/release/connscope quick "http://127.0.0.1:$MOCK_PORT/" -c 128 -z "${SHORT}s" >/dev/null 2>&1
  /usr/bin/time -f '%M' -o "$WORK/rss-long" ./target/release/connscope quick "http://127.0.0.1:$MOCK_PORT/" -c 128 -z "${LONG}s" >/dev/null 2>&1
  short=$(tail -1 "$WORK/rss-short")
  long=$(tail -1 "$WORK/rss-long")
  echo "${SHORT}s run max RSS: $short KiB"
  echo "${LONG}s run max RSS: $long KiB"
  echo "  long/short = $(ratio "$long" "$short")"
  stop_servers

  start_servers "taskset -c 0" 1 1
  throughput_table "pinned (server on core 0, client on core 1)" "taskset -c 0" "taskset -c 1" 1
  mock_vs_nginx "pinned" "taskset -c 1" 1
  stop_servers
}

main "$@"
