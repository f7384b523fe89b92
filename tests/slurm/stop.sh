#!/usr/bin/env bash
# Stop the test Slurm that tests/slurm/start.sh started, and only that.
#
# Cancels the test cluster's jobs (so no job or slurmstepd outlives its slurmd), then sends
# SIGTERM to each daemon whose PID start.sh recorded, newest first, and waits (bounded by
# DGM_SLURM_TIMEOUT seconds each) until it has exited; SIGKILL if it has not. A daemon that
# died earlier, or a PID file naming a process that is no longer that daemon, is just cleaned
# up. Leaves configuration, state and the database in place, so a later start.sh is quick.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"
export PATH=$PATH:/usr/sbin:/sbin

# wait_gone PID COMM SECONDS: true once PID is no longer COMM (gone or a zombie).
wait_gone() {
    local deadline=$((SECONDS + $3))
    while alive "$1" "$2"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

if pid_of slurmctld >/dev/null && pid_of slurmd >/dev/null; then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        log "cancelling jobs: ${jobs//$'\n'/ }"
        # shellcheck disable=SC2086  # one argument per job id
        timeout 10 scancel $jobs || true
        deadline=$((SECONDS + TIMEOUT))
        while [[ -n $(timeout 10 squeue -h -t running,completing -o %A 2>/dev/null || true) ]] &&
            ((SECONDS < deadline)); do
            sleep 0.2
        done
    fi
fi

status=0
for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    name=${DAEMONS[i]}
    [[ -f $PIDS/$name.pid ]] || continue
    pid=$(cat "$PIDS/$name.pid")
    if alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        if wait_gone "$pid" "$name" "$TIMEOUT"; then
            log "stopped $name ($pid) at t=${SECONDS}s"
        else
            log "$name ($pid) ignored SIGTERM for ${TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" "$name" 10 || { log "ERROR: $name ($pid) survived SIGKILL"; status=1; continue; }
        fi
    fi
    rm -f "$PIDS/$name.pid"
done
exit "$status"
