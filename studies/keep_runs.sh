#!/usr/bin/env bash
# Copy the finished runs of one run folder into another, records only: results.jsonl, out.txt, err.txt and
# done, never a checkpoint (*.pkl). The build machine keeps nothing between sessions, so a study longer
# than a session keeps its finished runs in the repository with this and puts them back in the next
# session (`ldr train` skips a folder holding its run finished). A run already there is left as it is
# (`ldr train` refuses a folder that holds a different run); an unfinished run is not copied (it is
# retrained). Each run appears whole or not at all (copied to a hidden folder, then renamed). A sweep's lists of
# the runs it expects (expected_runs-<md5>.json, named by their content) are copied too, so a reader of the kept
# runs can tell a finished grid from a part of it.
# Usage: studies/keep_runs.sh FROM_DIR TO_DIR
set -euo pipefail
from=${1:?usage: studies/keep_runs.sh FROM_DIR TO_DIR}
to=${2:?usage: studies/keep_runs.sh FROM_DIR TO_DIR}
[ -d "$from" ] || { echo "keep_runs: $from is not a folder" >&2; exit 1; }
mkdir -p "$to"
shopt -s nullglob
rm -rf "$to"/.keep.*  # a copy cut short by an earlier kill
copied=0 present=0 unfinished=0
for run in "$from"/*/; do
  run=${run%/}
  name=$(basename "$run")
  if [ ! -f "$run/done" ]; then unfinished=$((unfinished + 1)); continue; fi
  if [ -e "$to/$name" ]; then present=$((present + 1)); continue; fi
  [ -f "$run/results.jsonl" ] || { echo "keep_runs: $run has 'done' but no results.jsonl" >&2; exit 1; }
  tmp=$(mktemp -d "$to/.keep.$name.XXXXXX")
  for file in results.jsonl out.txt err.txt done; do
    [ ! -f "$run/$file" ] || cp "$run/$file" "$tmp/"
  done
  mv "$tmp" "$to/$name"
  copied=$((copied + 1))
done
for list in "$from"/expected_runs-*.json; do
  [ -e "$to/$(basename "$list")" ] || { cp "$list" "$to/.keep.list" && mv "$to/.keep.list" "$to/$(basename "$list")"; }
done
echo "keep_runs: $copied copied, $present already in $to, $unfinished unfinished left out"
