#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for trying and testing `hydra/launcher=slurm`.
#
#   scripts/slurm_local.sh start    # write /etc/slurm/slurm.conf, start munged, slurmctld, slurmd
#   scripts/slurm_local.sh stop     # stop the three daemons
#   scripts/slurm_local.sh status   # sinfo
#
# Needs root and the Debian/Ubuntu packages `slurm-wlm munge` (Slurm 22.05 tested). It is the
# least a Slurm needs, so it doubles as a reading guide:
#   * munge signs every request between commands and daemons (a key in /etc/munge, one daemon);
#   * slurmctld schedules, slurmd runs jobs; both read the same slurm.conf;
#   * processes are tracked through /proc (proctrack/linuxproc) and nothing is confined
#     (task/none): no cgroups, so it runs in a container too; CPUs and memory are counted by
#     the scheduler, not enforced;
#   * no accounting database (slurmdbd + MySQL): finished jobs go to a text file
#     (jobcomp/filetxt), which `sacct --completion` (-c) reads:
#       sacct -c -o JobID,JobName,State,NCPUS,ExitCode
#     Plain `sacct` (what submitit polls) answers "accounting storage is disabled": submitit
#     then learns that a job ended only from the result file the job writes.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by a3c-exp scripts/slurm_local.sh"
LOG_DIR=/var/log/slurm
SPOOL=/var/spool/slurm
JOBCOMP="$LOG_DIR/jobcomp.txt"

die() { echo "slurm_local: $*" >&2; exit 1; }

write_conf() {
    if [[ -f "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: not overwriting it"
    fi
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # Leave 1 GB to the system; jobs asking for more than this stay pending.
    mem_mb=$(awk '/MemTotal/ {m = int($2 / 1024) - 1024; print (m > 512 ? m : 512)}' /proc/meminfo)
    mkdir -p "$(dirname "$CONF")" "$LOG_DIR" "$SPOOL/ctld" "$SPOOL/d"
    cat > "$CONF" <<EOF
$MARK
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    [[ $EUID -eq 0 ]] || die "run as root (it starts system daemons)"
    command -v slurmctld >/dev/null && command -v munged >/dev/null \
        || die "install first: apt-get install -y --no-install-recommends slurm-wlm munge"
    write_conf
    if ! pgrep -x munged >/dev/null; then
        [[ -f /etc/munge/munge.key ]] || { mungekey --create && chown munge:munge /etc/munge/munge.key; }
        mkdir -p /run/munge && chown munge:munge /run/munge
        runuser -u munge -- munged
    fi
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 60); do
        if [[ "$(sinfo -h -o %T 2>/dev/null)" == idle* ]]; then
            sinfo
            return 0
        fi
        sleep 0.5
    done
    die "the node did not become idle within 30 s; see $LOG_DIR/slurmctld.log and slurmd.log"
}

stop() {
    scontrol shutdown 2>/dev/null || true
    for _ in $(seq 40); do
        pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
        sleep 0.25
    done
    if [[ -f /run/munge/munged.pid ]]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    -h | --help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0" ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
