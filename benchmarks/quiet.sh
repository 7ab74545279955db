#!/usr/bin/env bash
# Run a timing-sensitive command (a benchmark) on a quiet machine: one benchmark at a time (a lock),
# and this user's other work paused meanwhile (SIGSTOP, then SIGCONT when the command ends, even if it
# fails or is interrupted). A paused training or solve loses nothing; it only waits. Work that starts
# while the command runs is paused too (checked every second): on a 2-core machine one stray test run
# halves a measurement.
#   bash benchmarks/quiet.sh python benchmarks/annotate_concurrency.py --problems 32
# PAUSE is the pattern (pgrep -f) of the processes to pause: by default every socratic stage command
# and the issue-19 experiment scripts; e.g. PAUSE='python|pytest' for everything in Python.
set -uo pipefail
pattern=${PAUSE:-"socratic (run|train|solve|annotate|ask|serve)|gsm8k_qg_validation|qg_end_decisions"}
exec 9>"${TMPDIR:-/tmp}/socratic-quiet.lock"
flock 9
# Whether a process is this script or one it started: a command given to this script may itself match
# the pattern (`quiet.sh socratic annotate ...`), and so do the subshells this script runs.
ours() { local pid=$1; while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
    [ "$pid" = $$ ] && return 0; pid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' '); done; return 1; }
pause() { local pid; for pid in $(pgrep -u "$(id -u)" -f "$pattern"); do
    ours "$pid" || kill "-$1" "$pid" 2>/dev/null; done; }
keep_paused() { while sleep 1; do pause STOP; done; }
keep_paused &
watcher=$!
trap 'kill $watcher 2>/dev/null; wait $watcher 2>/dev/null; pause CONT' EXIT INT TERM
pause STOP
"$@"
