#!/usr/bin/env bash
# Runs the test suite without cached results and prints, per Bazel test target, the time it took, its
# timeout (from its size) and the share of the timeout used; a target over half its timeout is marked.
# Run it on a loaded machine too (e.g. while another clone builds): every target must stay under half.
#
#   bash scripts/test_times.sh                 # all tests, 2 at a time
#   bash scripts/test_times.sh //tests:e2e_test
set -uo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
((${#targets[@]})) || targets=(//...)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
bazel test --cache_test_results=no --jobs=2 "${targets[@]}" >"$log" 2>&1
status=$?
expr=$(printf "%s + " "${targets[@]}")
expr=${expr% + }
declare -A limit
while read -r name size timeout; do
  case "${timeout:-}" in
    short) limit[$name]=60 ;; moderate) limit[$name]=300 ;; long) limit[$name]=900 ;; eternal) limit[$name]=3600 ;;
    *) case "$size" in small) limit[$name]=60 ;; medium) limit[$name]=300 ;; large) limit[$name]=900 ;; *) limit[$name]=3600 ;; esac ;;
  esac
done < <(bazel query "tests($expr)" --output=xml 2>/dev/null | python3 -c '
import sys, xml.etree.ElementTree as ET
for r in ET.parse(sys.stdin).getroot().iter("rule"):
    a = {e.get("name"): e.get("value") for e in r if e.tag == "string"}
    print(r.get("name"), a.get("size", "medium"), a.get("timeout", ""))')
printf "%-44s %8s %8s %6s\n" target seconds timeout share
over=0
while read -r target result secs; do
  t=${limit[$target]:-0}
  share=$(awk -v s="$secs" -v t="$t" 'BEGIN { printf "%.0f%%", t ? 100 * s / t : 0 }')
  mark=""
  if awk -v s="$secs" -v t="$t" 'BEGIN { exit !(s > t / 2) }'; then mark="  OVER HALF"; over=$((over + 1)); fi
  printf "%-44s %8s %8s %6s  %s%s\n" "$target" "$secs" "$t" "$share" "$result" "$mark"
done < <(sed -nE 's#^(//[^ ]+) +(PASSED|FAILED|TIMEOUT|FLAKY) in ([0-9.]+)s.*#\1 \2 \3#p' "$log" | sort -k3 -n -r)
echo "$over targets over half their timeout; bazel test exit status $status"
((status == 0 && over == 0))
