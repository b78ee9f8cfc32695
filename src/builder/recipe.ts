/**
 * The builder VM's recipe: the files baked into its image and the launcher that boots it under
 * User-Mode Linux. They are constants (no input ever reaches them), written out at build time.
 */

/** Packages of the builder itself (grml-debootstrap and what --vmfile needs: kpartx, parted, qemu-img, udev). */
export const BUILDER_PACKAGES = [
  'systemd-sysv',
  'udev',
  'kmod',
  'iproute2',
  'mount',
  'procps',
  'ca-certificates',
  'grml-debootstrap',
  'kpartx',
  'dmsetup',
  'parted',
  'fdisk',
  'dosfstools',
  'e2fsprogs',
  'mmdebstrap',
  'debootstrap',
  'qemu-utils',
] as const;

/** Runs at boot in the builder (dvc-job.service): mounts the host's job dir, sets up modules and network, runs job.sh. */
export const JOB_RUNNER = `#!/bin/bash
set -u
log() { echo "[builder $(cut -d' ' -f1 /proc/uptime)s] $*" > /dev/console; }
job=$(tr ' ' '\\n' < /proc/cmdline | sed -n 's/^dvc\\.job=//p' | tail -n1)
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
`;

export const JOB_UNIT = `[Unit]
Description=debian-vm-ci builder job
ConditionKernelCommandLine=dvc.job
Wants=systemd-udev-trigger.service systemd-udev-settle.service
After=systemd-udev-trigger.service systemd-udev-settle.service local-fs.target systemd-modules-load.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/dvc-job-runner
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`;

/**
 * grml-debootstrap runs \`kpartx -d FILE\` right after unmounting the target; in the builder the
 * mapped partition was still busy at that moment (seen: "remove ioctl on loop0p1 failed: Device or
 * resource busy" for every retry), which failed a finished installation. This wrapper (first in
 * PATH) settles udev, unmounts what still uses the maps, retries, says what held them, and as the
 * last resort asks device-mapper for deferred removal (done when the last user closes it).
 */
export const KPARTX_WRAPPER = `#!/bin/sh
case " $* " in
  *" -d "*) ;;
  *) exec /usr/sbin/kpartx "$@" ;;
esac
file=""; for a in "$@"; do file="$a"; done
sync
for i in 1 2 3 4 5; do
  udevadm settle 2>/dev/null
  /usr/sbin/kpartx "$@" 2>/dev/null && exit 0
  for mnt in $(awk '$1 ~ /^\\/dev\\/mapper\\/loop[0-9]+p[0-9]+$/ {print $2}' /proc/mounts | sort -r); do
    echo "dvc-kpartx: $mnt is still mounted: unmounting it" >&2
    umount -R "$mnt" 2>/dev/null || umount -l "$mnt"
  done
  sleep 1
done
loops=$(losetup -j "$file" -O NAME -n 2>/dev/null)
[ -n "$loops" ] || loops="$file"
status=0
for dev in $loops; do
  base=$(basename "$dev")
  for map in $(dmsetup ls 2>/dev/null | awk -v b="$base" 'index($1, b "p") == 1 {print $1}'); do
    echo "dvc-kpartx: /dev/mapper/$map is still busy; open count: $(dmsetup info -c --noheadings -o open "$map" 2>/dev/null)" >&2
    grep -l "/dev/mapper/$map\\|$map" /proc/[0-9]*/mountinfo 2>/dev/null | while read -r f; do
      pid=\${f#/proc/}; pid=\${pid%/mountinfo}
      echo "dvc-kpartx:   mounted in the namespace of pid $pid ($(cat /proc/$pid/comm 2>/dev/null))" >&2
    done
    ls /sys/block/*/holders/ 2>/dev/null | head -20 >&2
    dmsetup remove --retry "$map" 2>/dev/null || { echo "dvc-kpartx: deferred removal of $map" >&2; dmsetup remove --deferred "$map" || status=1; }
  done
done
exit $status
`;

/**
 * mmdebstrap --customize-hook script; $1 is the root file system, $2 the directory with the files
 * above, $3 where the image's kernel and initrd are copied for QEMU's direct kernel boot.
 */
export const CUSTOMIZE_HOOK = `#!/bin/sh
set -eu
R="$1"; F="$2"; B="$3"
cp "$(ls "$R"/boot/vmlinu[xz]-* | sort -V | tail -n1)" "$B/vmlinuz"
cp "$(ls "$R"/boot/initrd.img-* | sort -V | tail -n1)" "$B/initrd.img"
if [ -d /usr/lib/uml/modules ]; then
  mkdir -p "$R/usr/lib/modules"
  cp -a /usr/lib/uml/modules/. "$R/usr/lib/modules/"
fi
install -m 0755 "$F/dvc-job-runner" "$R/usr/local/sbin/dvc-job-runner"
install -m 0755 "$F/kpartx" "$R/usr/local/sbin/kpartx"
install -m 0644 "$F/dvc-job.service" "$R/etc/systemd/system/dvc-job.service"
ln -sf /etc/systemd/system/dvc-job.service "$R/etc/systemd/system/multi-user.target.wants/dvc-job.service"
for u in getty@tty1.service serial-getty@ttyS0.service getty.target apt-daily.timer apt-daily-upgrade.timer \\
         e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer man-db.timer \\
         systemd-timesyncd.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$u"
done
# udevd's private mount namespace kept a copy of grml-debootstrap's target mount after the target was
# unmounted, which left the partition map busy (seen through the kpartx wrapper below).
mkdir -p "$R/etc/systemd/system/systemd-udevd.service.d"
printf '[Service]\\nPrivateMounts=no\\n' > "$R/etc/systemd/system/systemd-udevd.service.d/debian-vm-ci.conf"
echo builder > "$R/etc/hostname"
echo "LABEL=dvc-builder / ext4 rw,noatime 0 1" > "$R/etc/fstab"
rm -f "$R/etc/apt/apt.conf.d/99mmdebstrap"
`;

/**
 * Boots linux.uml with networking through libslirp-helper. Node cannot make a socketpair, so this
 * small launcher does: one end of socketpair(AF_UNIX, SOCK_DGRAM) goes to libslirp-helper, the
 * other to linux.uml, each as its fd 3 (as debos' fakemachine does). Everything stays in the
 * launcher's process group, so stopping that group stops UML and slirp too.
 */
export const UML_LAUNCHER = `import fcntl, os, signal, socket, subprocess, sys

helper, argv = sys.argv[1], sys.argv[2:]
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fa = fcntl.fcntl(a.fileno(), fcntl.F_DUPFD_CLOEXEC, 20)
fb = fcntl.fcntl(b.fileno(), fcntl.F_DUPFD_CLOEXEC, 20)
a.close(); b.close()

def spawn(cmd, fd, **kw):
    # subprocess closes every fd not in pass_fds after preexec_fn: put the end on fd 3 here instead.
    os.dup2(fd, 3, inheritable=False)
    try:
        return subprocess.Popen(cmd, pass_fds=(3,), **kw)
    finally:
        os.close(3)

slirp = spawn([helper, "--fd=3", "--exit-with-parent"], fa, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
uml = spawn(argv, fb, stdin=subprocess.DEVNULL)
os.close(fa); os.close(fb)

def stop(signum, frame):
    for p in (uml, slirp):
        try: p.kill()
        except ProcessLookupError: pass
    sys.exit(128 + signum)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
rc = uml.wait()
slirp.terminate()
try: slirp.wait(timeout=5)
except subprocess.TimeoutExpired: slirp.kill()
sys.exit(rc)
`;
