#!/bin/sh
set -eu
R="$1"; F="$2"; B="$3"
# The newest kernel and initrd: Debian's file names have no blanks, and sort -V orders their versions.
# shellcheck disable=SC2012
cp "$(ls "$R"/boot/vmlinu[xz]-* | sort -V | tail -n1)" "$B/vmlinuz"
# shellcheck disable=SC2012
cp "$(ls "$R"/boot/initrd.img-* | sort -V | tail -n1)" "$B/initrd.img"
if [ -d /usr/lib/uml/modules ]; then
  mkdir -p "$R/usr/lib/modules"
  cp -a /usr/lib/uml/modules/. "$R/usr/lib/modules/"
fi
install -m 0755 "$F/dvc-job-runner" "$R/usr/local/sbin/dvc-job-runner"
install -m 0755 "$F/kpartx" "$R/usr/local/sbin/kpartx"
install -m 0644 "$F/dvc-job.service" "$R/etc/systemd/system/dvc-job.service"
ln -sf /etc/systemd/system/dvc-job.service "$R/etc/systemd/system/multi-user.target.wants/dvc-job.service"
for u in getty@tty1.service serial-getty@ttyS0.service getty.target apt-daily.timer apt-daily-upgrade.timer \
         e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer man-db.timer \
         systemd-timesyncd.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$u"
done
# udevd's private mount namespace kept a copy of grml-debootstrap's target mount after the target was
# unmounted, which left the partition map busy (seen through the kpartx wrapper below).
mkdir -p "$R/etc/systemd/system/systemd-udevd.service.d"
printf '[Service]\nPrivateMounts=no\n' > "$R/etc/systemd/system/systemd-udevd.service.d/debian-vm-ci.conf"
echo builder > "$R/etc/hostname"
echo "LABEL=dvc-builder / ext4 rw,noatime 0 1" > "$R/etc/fstab"
rm -f "$R/etc/apt/apt.conf.d/99mmdebstrap"
