#!/bin/sh
case " $* " in
  *" -d "*) ;;
  *) exec /usr/sbin/kpartx "$@" ;;
esac
file=""; for a in "$@"; do file="$a"; done
sync
for _ in 1 2 3 4 5; do
  udevadm settle 2>/dev/null
  /usr/sbin/kpartx "$@" 2>/dev/null && exit 0
  awk '$1 ~ /^\/dev\/mapper\/loop[0-9]+p[0-9]+$/ {print $2}' /proc/mounts | sort -r | while read -r mnt; do
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
    grep -l "/dev/mapper/$map\|$map" /proc/[0-9]*/mountinfo 2>/dev/null | while read -r f; do
      pid=${f#/proc/}; pid=${pid%/mountinfo}
      echo "dvc-kpartx:   mounted in the namespace of pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null))" >&2
    done
    for holders in /sys/block/*/holders; do
      [ -n "$(ls -A "$holders" 2>/dev/null)" ] && echo "dvc-kpartx:   $holders: $(ls "$holders")" >&2
    done
    dmsetup remove --retry "$map" 2>/dev/null || { echo "dvc-kpartx: deferred removal of $map" >&2; dmsetup remove --deferred "$map" || status=1; }
  done
done
exit $status
