#!/usr/bin/env bash
# Times `tbops doctor --nodes FILE --summary` over a fleetsim fleet, several
# binaries interleaved round by round, and prints benchstat lines (one per run):
# wall time, the doctor's CPU (user+sys), its max RSS, and the CPU the
# simulated nodes spent answering it (their process, from /proc/PID/stat).
# A run whose summary shows a WARNING or CRITICAL row fails the script: the
# fleet is healthy, so that would be a false warning. ALLOW_WARN="name ..."
# lets the named binaries (an old build, say) have them; every line counts them.
#
# usage: bench/fleet/doctor.sh NODES_FILE FLEETSIM_PID ROUNDS name=binary... [-- doctor flags]
set -euo pipefail
nodes=$1 simpid=$2 rounds=$3
shift 3
bins=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do bins+=("$1"); shift; done
[ $# -gt 0 ] && shift
tick=$(getconf CLK_TCK)
simcpu() { awk -v t="$tick" '{printf "%.3f", ($14+$15)/t}' "/proc/$simpid/stat"; }
out=$(mktemp)
for r in $(seq "$rounds"); do
  for nb in "${bins[@]}"; do
    name=${nb%%=*} bin=${nb#*=}
    before=$(simcpu)
    /usr/bin/time -f '%e %U %S %M' -o "$out.time" "$bin" doctor --nodes "$nodes" --summary "$@" >"$out" 2>"$out.err" || true
    after=$(simcpu)
    read -r wall user sys rss < <(tail -n 1 "$out.time")
    bad=$(awk 'NR>1 && ($3=="WARNING" || $3=="CRITICAL")' "$out" | wc -l)
    rows=$(awk 'NR>1 && NF>=3' "$out" | wc -l)
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "# round $r $name: $rows rows, $bad warning/critical, load $load" >&2
    if [ "$bad" -ne 0 ] && [[ " ${ALLOW_WARN:-} " != *" $name "* ]]; then
      echo "$name: $bad warning/critical rows on a healthy fleet:" >&2; grep -E 'WARNING|CRITICAL' "$out" | head >&2; exit 1
    fi
    awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v a="$before" -v b="$after" -v bad="$bad" 'BEGIN{
      printf "BenchmarkDoctor200/impl=%s 1 %.0f ns/op %.3f cpu-s/op %.3f sim-cpu-s/op %.1f MB-rss %d warn-rows\n", n, w*1e9, u+s, b-a, m/1024, bad }'
  done
done
rm -f "$out" "$out.err" "$out.time"
