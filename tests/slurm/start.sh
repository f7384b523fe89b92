#!/usr/bin/env bash
# Start a real one-node Slurm (with job accounting) for tests, without systemd.
#
#   sudo tests/slurm/start.sh      # idempotent; prints nothing on stdout, progress on stderr
#   tests/slurm/stop.sh            # ends exactly the daemons this script started
#
# Debian/Ubuntu, as root. Installs slurm-wlm, slurmdbd, munge and mariadb-server from apt if
# missing; writes /etc/slurm/{slurm,gres,slurmdbd}.conf; starts munged, a private mariadbd
# (own datadir, socket and TCP port on 127.0.0.1), slurmdbd, slurmctld and slurmd; registers
# the cluster so `sacct` works (the Snakemake slurm executor polls job state with sacct); and
# waits, each wait bounded by DGM_SLURM_TIMEOUT seconds, until the node is idle.
#
# Settings (environment):
#   DGM_SLURM_STATE    state, logs, pid files, database    [/var/lib/dgm-test-slurm]
#   DGM_SLURM_GPUS     fake GPUs (character devices /dev/fakegpuN) on the node   [2]
#   DGM_SLURM_DB_PORT  TCP port of the private MariaDB on 127.0.0.1             [13306]
#   DGM_SLURM_TIMEOUT  seconds any single wait may take                         [60]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

GPUS=${DGM_SLURM_GPUS:-2}
DB_PORT=${DGM_SLURM_DB_PORT:-13306}
DB_DIR=$STATE/mysql
DB_SOCK=$DB_DIR/mysqld.sock
DB_PASS=dgm-test-only     # a throwaway database reachable only from 127.0.0.1

[[ $(id -u) == 0 ]] || die "run as root (installs packages, writes /etc/slurm, starts daemons)"
[[ $GPUS =~ ^[0-9]+$ ]] || die "DGM_SLURM_GPUS must be a non-negative integer, not '$GPUS'"

# --- packages -------------------------------------------------------------------------------
export PATH=$PATH:/usr/sbin:/sbin
need=()
for pair in slurmctld:slurm-wlm slurmd:slurm-wlm sacct:slurm-client slurmdbd:slurmdbd \
            munged:munge mariadbd:mariadb-server mariadb:mariadb-client; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [[ " ${need[*]} " == *" ${pair#*:} "* ]] ||
        need+=("${pair#*:}")
done
if ((${#need[@]})); then
    log "installing ${need[*]} from apt"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d keeps the packages' own init scripts from starting services we start below.
    timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" >"/tmp/dgm-slurm-apt.log" 2>&1 ||
        { timeout 300 apt-get update -qq >/dev/null 2>&1 &&
          timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" >"/tmp/dgm-slurm-apt.log" 2>&1; } ||
        die "apt-get install ${need[*]} failed, see /tmp/dgm-slurm-apt.log"
fi

# --- configuration --------------------------------------------------------------------------
mkdir -p "$PIDS" "$LOGS" "$STATE/run" "$STATE/slurmctld" "$STATE/slurmd" "$STATE/conf"

# The node's real size, as slurmd measures it ("CPUs=2 ... RealMemory=24105").
hw=$(slurmd -C | head -n1)
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[[ -n $cpus && -n $mem ]] || die "cannot parse 'slurmd -C': $hw"

# Fake GPUs: Slurm only needs a device node per GPU to schedule and bind gres/gpu
# (it sets CUDA_VISIBLE_DEVICES in the job). Major 195 is NVIDIA's; nothing opens them.
gres_line=""
gpu_files=()
for ((i = 0; i < GPUS; i++)); do
    dev=/dev/fakegpu$i
    [[ -c $dev ]] || mknod "$dev" c 195 "$i" 2>/dev/null ||
        die "cannot create character device $dev (container without CAP_MKNOD?); set DGM_SLURM_GPUS=0"
    gpu_files+=("$dev")
done
((GPUS > 0)) && gres_line="Gres=gpu:$GPUS"

cat >"$STATE/conf/slurm.conf" <<EOF
# Written by tests/slurm/start.sh: a one-node test cluster. Do not use in production.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# No cgroups: containers rarely delegate them, and tests need no enforcement.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MpiDefault=none
# Accounting through slurmdbd, so that sacct reports finished jobs.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.txt
# cons_tres understands --gpus; CPUs and memory are consumable so jobs share the node.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
GresTypes=gpu
ReturnToService=2
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

{
    echo "# Written by tests/slurm/start.sh"
    echo "AutoDetect=off"
    ((GPUS > 0)) && echo "NodeName=$NODE Name=gpu File=$(IFS=,; echo "${gpu_files[*]}")"
    true
} >"$STATE/conf/gres.conf"

cat >"$STATE/conf/slurmdbd.conf" <<EOF
# Written by tests/slurm/start.sh
AuthType=auth/munge
DbdHost=$NODE
SlurmUser=root
LogFile=$LOGS/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF

# A daemon must not keep running on a config it did not read: if anything changed, restart.
changed=0
for f in slurm.conf gres.conf slurmdbd.conf; do
    cmp -s "$STATE/conf/$f" "/etc/slurm/$f" || changed=1
done
if ((changed)); then
    for d in "${DAEMONS[@]}"; do
        if pid_of "$d" >/dev/null; then
            log "configuration changed: restarting"
            "$HERE/stop.sh"
            break
        fi
    done
    mkdir -p /etc/slurm
    install -m 644 "$STATE/conf/slurm.conf" "$STATE/conf/gres.conf" /etc/slurm/
    install -m 600 "$STATE/conf/slurmdbd.conf" /etc/slurm/   # slurmdbd refuses readable secrets
fi

# --- daemons --------------------------------------------------------------------------------
# launch NAME CMD...: start CMD in the foreground of a new session, detached from our stdio,
# and record its PID. The daemons run in the foreground (-D/-F) so that $! is the daemon
# itself and no pid file of theirs has to be trusted. setsid execs in place here: a background
# job of a non-interactive shell is never a process-group leader.
launch() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$LOGS/$name.out" 2>&1 &
    echo $! >"$PIDS/$name.pid"
}

# started NAME WHAT CHECK: wait until the shell command CHECK succeeds (each try capped at
# 10 s, all tries at $TIMEOUT s); fail fast if the daemon died meanwhile.
started() {
    local name=$1 what=$2 check=$3 deadline=$((SECONDS + TIMEOUT))
    until timeout 10 bash -c "$check" >/dev/null 2>&1; do
        pid_of "$name" >/dev/null || {
            tail -n 20 "$LOGS/$name.out" "$LOGS/$name.log" >&2 2>/dev/null || true
            die "$name exited while starting; logs in $LOGS"
        }
        ((SECONDS < deadline)) || die "$what not ready after ${TIMEOUT}s; logs in $LOGS"
        sleep 0.2
    done
    log "$what ready (t=${SECONDS}s)"
}

munge_ok="munge -n | unmunge"
if pid_of munged >/dev/null; then
    :
elif timeout 10 bash -c "$munge_ok" >/dev/null 2>&1; then
    log "using the munged already serving /run/munge (not ours: stop.sh leaves it alone)"
else
    [[ -s /etc/munge/munge.key ]] || {
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    }
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 700 /etc/munge
    chmod 400 /etc/munge/munge.key
    launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
    started munged munged "$munge_ok"
fi

if ! pid_of mariadbd >/dev/null; then
    if [[ ! -d $DB_DIR/mysql ]]; then
        log "initialising the private MariaDB in $DB_DIR"
        rm -rf "$DB_DIR"
        install -d -o mysql -g mysql -m 700 "$DB_DIR"
        timeout "$TIMEOUT" mariadb-install-db --no-defaults --datadir="$DB_DIR" --user=mysql \
            --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve \
            >"$LOGS/mariadb-install.log" 2>&1 || die "mariadb-install-db failed, see $LOGS/mariadb-install.log"
    fi
    launch mariadbd mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" --socket="$DB_SOCK" \
        --pid-file="$DB_DIR/mariadbd.pid" \
        --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
        --innodb-buffer-pool-size=64M
    started mariadbd MariaDB "mariadb-admin --no-defaults --socket='$DB_SOCK' -uroot ping"
    timeout 20 mariadb --no-defaults --socket="$DB_SOCK" -uroot -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
           CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" ||
        die "cannot create the slurm database user"
fi

if ! pid_of slurmdbd >/dev/null; then
    launch slurmdbd slurmdbd -D
    started slurmdbd slurmdbd "sacctmgr -n list cluster"
fi
clusters=$(timeout 10 sacctmgr -n -P list cluster format=cluster) || die "sacctmgr cannot reach slurmdbd"
if ! grep -qx "$CLUSTER" <<<"$clusters"; then
    timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed"
    log "registered cluster $CLUSTER"
fi

if ! pid_of slurmctld >/dev/null; then
    launch slurmctld slurmctld -D -i
    started slurmctld slurmctld "scontrol ping | grep -q UP"
fi
if ! pid_of slurmd >/dev/null; then
    launch slurmd slurmd -D -N "$NODE"
fi
# idle on a fresh start; mixed/allocated if a restarted controller recovered running jobs.
started slurmd "node $NODE" "sinfo -h -n $NODE -o %T | grep -Eqx 'idle|mixed|allocated'"
log "Slurm is up: partition $PARTITION, node $NODE (${cpus} CPUs, ${mem} MB, ${GPUS} fake GPUs)"
