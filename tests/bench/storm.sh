#!/usr/bin/env bash
# Alert storm against `dreamops serve` (store file on disk, workers analysing every alert against the in-process
# sandbox): signed PagerDuty deliveries at full speed for SECONDS, then the backlog drains. Prints the intake's
# latency and errors during the storm, serve's resident memory (peak during the storm, after the drain, and after
# a second idle minute), and how long the drain took.
# usage: tests/bench/storm.sh DREAMOPS_BIN [SECONDS] [CONNECTIONS]    (needs wrk and ../shared/bench/gen_wrk.py)
set -u
bin=$(realpath "$1"); secs=${2:-60}; conns=${3:-16}
here=$(cd "$(dirname "$0")" && pwd)
gen=${GEN_WRK:-$here/../../../shared/bench/gen_wrk.py}
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)"; exit 1; }
[ -f "$gen" ] || { echo "gen_wrk.py not found at $gen (set GEN_WRK)"; exit 1; }
secret=storm-secret-$$
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$gen" "$secret" 400000 /webhooks/pagerduty "$work/load.lua" 1
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir -p "$work/serve"
(cd "$work/serve" && PAGERDUTY_WEBHOOK_SECRET=$secret exec "$bin" serve --port "$port" --sandbox oom-limit \
  >"$work/serve.log" 2>&1) &
pid=$!
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
# Pending work, from the metrics endpoint: stage messages visible now (scheduled verifications wait their turn).
queued() { curl -fs "http://127.0.0.1:$port/metrics" | awk '/^dreamops_queue_due/ {s+=$2} END {print s+0}'; }
echo "rss_before_kb=$(rss)"
wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s "$work/load.lua" "http://127.0.0.1:$port" 2>&1 | grep RESULT
echo "rss_peak_during_storm_kb=$(hwm) backlog_after_storm=$(queued)"
start=$(date +%s)
while [ "$(queued)" -gt 0 ]; do
  sleep 1
  [ $(( $(date +%s) - start )) -gt 1800 ] && { echo "backlog did not drain in 30 minutes"; break; }
done
echo "drained_in_s=$(( $(date +%s) - start )) rss_after_drain_kb=$(rss)"
sleep 60
echo "rss_after_idle_minute_kb=$(rss) rss_peak_kb=$(hwm)"
kill $pid; wait $pid 2>/dev/null
