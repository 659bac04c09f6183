#!/usr/bin/env bash
# Runs `tbops serve` over a fleetsim fleet for DURATION seconds and prints, every
# STEP seconds, its CPU seconds so far (user+sys, /proc/PID/stat), its RSS and the
# simulated nodes' CPU seconds so far, then stops it with SIGTERM.
#
# usage: bench/fleet/serve.sh TBOPS NODES_FILE FLEETSIM_PID DURATION STEP [serve flags]
set -euo pipefail
bin=$1 nodes=$2 simpid=$3 duration=$4 step=$5
shift 5
tick=$(getconf CLK_TCK)
cpu() { awk -v t="$tick" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
"$bin" serve --nodes "$nodes" --listen 127.0.0.1:0 --interval 30s "$@" >/dev/null 2>"${SERVE_LOG:-/dev/null}" &
pid=$!
sim0=$(cpu "$simpid")
echo "t_s serve_cpu_s serve_rss_MB sim_cpu_s load1"
for ((t = 0; t <= duration; t += step)); do
  echo "$t $(cpu $pid) $(rss $pid) $(awk -v a="$sim0" -v b="$(cpu "$simpid")" 'BEGIN{printf "%.2f", b-a}') $(cut -d' ' -f1 /proc/loadavg)"
  sleep "$step"
done
kill -TERM "$pid"
wait "$pid"
echo "exit $?"
