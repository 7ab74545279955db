#!/usr/bin/env bash
# Run a timing-sensitive command (a benchmark) on a quiet machine: one benchmark at a time (a lock),
# and this user's long background work paused meanwhile (SIGSTOP, then SIGCONT when the command ends,
# even if it fails or is interrupted). A paused training or solve loses nothing; it only waits.
#   bash benchmarks/quiet.sh python benchmarks/annotate_concurrency.py --problems 32
# PAUSE is the pattern (pgrep -f) of the processes to pause: by default every socratic stage command
# and the issue-19 experiment scripts.
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
trap 'pause CONT' EXIT INT TERM
pause STOP
"$@"
