# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by start.sh/stop.sh
# Shared settings and helpers for tests/slurm/start.sh and stop.sh. Sourced, not run.
#
# Everything this test cluster owns lives under $DGM_SLURM_STATE, except the files Slurm and
# MUNGE insist on finding at fixed paths: /etc/slurm/{slurm,gres,slurmdbd}.conf (the
# slurm-jobstep plugin strips SLURM_CONF inside jobs), /etc/munge/munge.key and the default
# MUNGE socket /run/munge/munge.socket.2.

STATE=${DGM_SLURM_STATE:-/var/lib/dgm-test-slurm}
PIDS=$STATE/pids          # one <daemon>.pid per process that start.sh started
LOGS=$STATE/log
TIMEOUT=${DGM_SLURM_TIMEOUT:-60}    # seconds any single wait may take before we give up
NODE=localhost            # node and controller name: independent of odd or unresolvable hostnames
CLUSTER=dgmtest
PARTITION=debug

# The daemons, in start order; stop.sh walks the list backwards.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

log() { printf '[slurm-test] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# alive PID COMM: true if PID exists, is not a zombie and its command name is COMM.
# PID 1 here does not reap, so a dead daemon can linger as a zombie ("Z"); that counts as dead.
# The command-name check keeps a recycled PID from being mistaken for (or killed as) a daemon.
alive() {
    local pid=$1 comm=$2 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # /proc/PID/stat is "PID (COMM) STATE ..."; COMM may itself contain spaces or parentheses.
    [[ ${stat#*) } != Z* && ${stat#*) } != X* ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# pid_of NAME: the PID recorded for daemon NAME, if that daemon is still alive.
pid_of() {
    local pid
    pid=$(cat "$PIDS/$1.pid" 2>/dev/null) || return 1
    alive "$pid" "$1" && echo "$pid"
}
