#!/bin/bash
set -u
log() { echo "[builder $(cut -d' ' -f1 /proc/uptime)s] $*" > /dev/console; }
job=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^dvc\.job=//p' | tail -n1)
[ -n "$job" ] || { log "no dvc.job= on the kernel command line"; exit 1; }
mkdir -p /job
if grep -qw hostfs /proc/filesystems; then
  mount -t hostfs none /job -o "$job" || { log "hostfs mount of $job failed"; exit 1; }
else
  modprobe 9pnet_virtio 2>/dev/null
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 dvcjob /job || { log "9p mount failed"; exit 1; }
fi
modprobe dm-mod; modprobe loop max_loop=16
ip link set lo up
for nic in vec0 eth0; do
  if ip link show "$nic" >/dev/null 2>&1; then
    ip link set "$nic" up
    ip addr add 10.0.2.15/24 dev "$nic"
    ip route add default via 10.0.2.2
  fi
done
echo "nameserver 10.0.2.3" > /etc/resolv.conf
log "running job.sh"
rm -f /job/exit-code
set -o pipefail
( cd /job && exec bash /job/job.sh ) 2>&1 | tee /job/job.log > /dev/console
rc=$?
echo "$rc" > /job/exit-code
log "job.sh exited with status $rc"
sync
exit 0
