#!/usr/bin/env bash
# Compares two revisions of TruckeeFS on bench/run.sh's workloads, taking turns so that a
# machine's drift (this one's speed moves by tens of percent within an hour) hits both alike,
# and prints each metric's median per revision and the ratio B/A.
#
#   bench/compare.sh REV_A REV_B [--rounds 3] [--truckeefs-args "ARGS"] [--size-mib 256]
#                    [--files 2000] [--rand-reads 5000] [--workdir DIR]
#
# A revision is anything git names (a commit, a branch, HEAD~2), or WORKTREE for the working
# tree as it is. Each round runs bench/run.sh --targets truckeefs --runs 1 once per revision,
# A first in odd rounds and B first in even ones. The other options go to bench/run.sh.
# Results: a table on stdout, JSON in bench/results/compare-*.json (not committed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${1:-} in -h|--help|"") sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ $# -ge 2 ] || { echo "usage: bench/compare.sh REV_A REV_B [options] (see --help)" >&2; exit 2; }
revisions=("$1" "$2")
shift 2
rounds=3
passed=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --truckeefs-args|--size-mib|--files|--rand-reads|--workdir) passed+=("$1" "$2"); shift 2 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log() { echo "[compare] $*" >&2; }

# Each revision is published from its own copy of the tree, so neither build sees the other's files.
for i in 0 1; do
  rev=${revisions[$i]}
  source=$repo
  if [ "$rev" != WORKTREE ]; then
    git -C "$repo" rev-parse --verify --quiet "$rev^{commit}" > /dev/null || { echo "not a revision: $rev" >&2; exit 2; }
    source=$work/source-$i
    mkdir -p "$source"
    git -C "$repo" archive "$rev" | tar -x -C "$source"
  fi
  log "publishing $rev"
  dotnet publish "$source/src/TruckeeFs.Cli" -c Release -o "$work/bin-$i" --nologo -v quiet >&2
done

results=$work/results.tsv
for round in $(seq "$rounds"); do
  order=(0 1)
  [ $((round % 2)) = 0 ] && order=(1 0)
  for i in "${order[@]}"; do
    log "round $round of $rounds: ${revisions[$i]}"
    output=$(bash "$repo/bench/run.sh" --targets truckeefs --runs 1 --bin "$work/bin-$i" "${passed[@]}")
    file=$(sed -n 's/^Results: //p' <<< "$output")
    [ -f "$file" ] || { echo "$output" >&2; echo "bench/run.sh wrote no results" >&2; exit 1; }
    printf '%s\t%s\n' "$i" "$file" >> "$results"
  done
done

mkdir -p "$repo/bench/results"
python3 - "$results" "$repo/bench/results/compare-$(date +%Y%m%d-%H%M%S).json" "${revisions[@]}" <<'PYTHON'
import json, statistics, sys
results, out, rev_a, rev_b = sys.argv[1:5]
revisions = [rev_a, rev_b]
values, units = {}, {}
for line in open(results):
    index, path = line.rstrip("\n").split("\t")
    data = json.load(open(path))
    units.update(data["units"])
    for metric, by_target in data["medians"].items():
        values.setdefault(metric, ([], []))[int(index)].append(by_target["truckeefs"])
summary = {}
def number(v):
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
print(f"{'metric':<14}{'unit':<11}{'better':<8}{rev_a[:14]:>15}{rev_b[:14]:>15}{'B/A':>8}   rounds (A | B)")
for metric, (a, b) in values.items():
    median_a, median_b = statistics.median(a), statistics.median(b)
    ratio = median_b / median_a if median_a else float("nan")
    summary[metric] = {"unit": units[metric]["unit"], "better": units[metric]["better"], "a": a, "b": b,
                       "median_a": median_a, "median_b": median_b, "ratio_b_over_a": ratio}
    rounds = ", ".join(number(v) for v in a) + " | " + ", ".join(number(v) for v in b)
    print(f"{metric:<14}{units[metric]['unit']:<11}{units[metric]['better']:<8}{number(median_a):>15}{number(median_b):>15}{ratio:>8.3f}   {rounds}")
json.dump({"revisions": revisions, "metrics": summary}, open(out, "w"), indent=1)
print(f"Results: {out}")
PYTHON
