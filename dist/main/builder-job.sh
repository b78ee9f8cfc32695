#!/bin/bash
# The install job: run by the builder VM with /job shared from the host (see builder-install.ts).
set -uo pipefail
# shellcheck source=/dev/null
. /job/params
export DEBIAN_FRONTEND=noninteractive
if [ -n "$PROXY" ]; then
  export http_proxy="$PROXY"
  # The proxy tunnels to the configured mirror only: other https downloads (an install-command's) go direct.
  case "$MIRROR" in https://*) export https_proxy="$PROXY" ;; esac
fi
VALIDITY=""
if [ "$CHECK_VALID_UNTIL" = 0 ]; then
  # A snapshot mirror: the builder's apt and the target's (through mmdebstrap) accept expired Release files.
  echo 'Acquire::Check-Valid-Until "false";' > /etc/apt/apt.conf.d/90dvc-valid-until
  VALIDITY=" --aptopt=/etc/apt/apt.conf.d/90dvc-valid-until"
fi
mkdir -p /scratch
mount -o noatime LABEL=dvc-scratch /scratch || mount -o noatime /dev/ubdb /scratch || mount -o noatime /dev/vdb /scratch || exit 90
T=/scratch/qemu.img
rm -f "$T"
if ls /job/debs/grml-debootstrap_*.deb >/dev/null 2>&1; then
  echo "I: installing the grml-debootstrap built by this run"
  # The built package is the one under test, even when the builder's release has a newer one (unstable does).
  apt-get update -q && apt-get install -y -q --allow-downgrades /job/debs/grml-debootstrap_*.deb || exit 91
fi
EXTRA=()
[ -s /job/installer-args ] && mapfile -d '' -t EXTRA < /job/installer-args
case "$INSTALLER" in
  grml-debootstrap)
    # What a VM test needs, and nothing that changes what grml-debootstrap installs.
    args=(--force --vmfile --vmsize "$VMSIZE" --target "$T" --release "$RELEASE" --hostname "$HOSTNAME"
          --password "$(cat /job/password)" --bootappend "$BOOTAPPEND")
    [ -n "$MIRROR" ] && args+=(--mirror "$MIRROR")
    [ "$VMEFI" = 1 ] && args+=(--vmefi)
    if [ "$PROFILE" = fast ]; then
      # install-profile: fast, a named shortcut: the lean list, no kernel of grml-debootstrap's choosing, minbase.
      args+=(--nokernel --packages /job/packages --defaultinterfaces --remove-configs
             --debopt "--variant=minbase --dpkgopt=force-unsafe-io --dpkgopt=path-exclude=/usr/share/doc/* --dpkgopt=path-include=/usr/share/doc/*/copyright --dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/locale/*$VALIDITY")
      cp /job/packages /job/installer-packages
    else
      # The installer's own list (the package this run built, when it tests itself); packages adds to it.
      cp /etc/debootstrap/packages /job/installer-packages
      if [ -s /job/packages ]; then
        cat /job/packages >> /job/installer-packages
        args+=(--packages /job/installer-packages)
      fi
      [ -n "$VALIDITY" ] && args+=(--debopt "${VALIDITY# }")
    fi
    if ls /job/install-debs/*.deb >/dev/null 2>&1; then
      # install-built-packages: the run's .deb files go into the image inside grml-debootstrap's chroot stage.
      # grml-debootstrap copies /etc/debootstrap/extrapackages into the target; its own EXTRAPACKAGES step
      # (dpkg -i, then apt-get install without packages) leaves their dependencies unresolved, so apt installs
      # them instead, from a chroot script, with their dependencies from the mirror.
      mkdir -p /etc/debootstrap/extrapackages /etc/debootstrap/debian-vm-ci-chroot-scripts
      cp /job/install-debs/*.deb /etc/debootstrap/extrapackages/
      export EXTRAPACKAGES=no
      cat > /etc/debootstrap/debian-vm-ci-chroot-scripts/50-built-packages <<'EOS'
#!/bin/sh
set -e
echo "I: installing the packages built by this run: $(cd /etc/debootstrap/extrapackages && echo *.deb)"
DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades /etc/debootstrap/extrapackages/*.deb
rm -rf /etc/debootstrap/extrapackages
EOS
      chmod 0755 /etc/debootstrap/debian-vm-ci-chroot-scripts/50-built-packages
      args+=(--chroot-scripts /etc/debootstrap/debian-vm-ci-chroot-scripts)
    fi
    # After the chroot stage (grml-debootstrap's post-scripts): the build-time dpkg and apt options
    # mmdebstrap kept in the target (--debopt above) are not for the installed system.
    mkdir -p /etc/debootstrap/post-scripts
    cat > /etc/debootstrap/post-scripts/zz-debian-vm-ci <<'EOS'
#!/bin/sh
rm -f "$MNTPOINT/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$MNTPOINT/etc/apt/apt.conf.d/99mmdebstrap"
if [ "$CHECK_VALID_UNTIL" = 0 ]; then
  echo 'Acquire::Check-Valid-Until "false";' > "$MNTPOINT/etc/apt/apt.conf.d/90debian-vm-ci-valid-until"
fi
# The password grml-debootstrap wrote into the target (/etc/debootstrap/variables, deleted at the end of its chroot
# stage) is still in the file system's free blocks: discard them, so that the image holds only the password's hash.
sync
if ! fstrim -v "$MNTPOINT"; then
  echo "I: fstrim failed: zeroing the target's free space instead"
  dd if=/dev/zero of="$MNTPOINT/.debian-vm-ci-zero" bs=4M status=none 2>/dev/null
  sync
  rm -f "$MNTPOINT/.debian-vm-ci-zero"
  sync
fi
EOS
    chmod 0755 /etc/debootstrap/post-scripts/zz-debian-vm-ci
    export CHECK_VALID_UNTIL
    echo "I: grml-debootstrap $(dpkg-query -W -f='${Version}' grml-debootstrap) (install-profile: $PROFILE)"
    grml-debootstrap "${args[@]}" "${EXTRA[@]}"
    rc=$?
    ;;
  command)
    DVC_IMAGE="$T" DVC_RELEASE="$RELEASE" DVC_HOSTNAME="$HOSTNAME" DVC_MIRROR="$MIRROR" DVC_IMAGE_SIZE="$VMSIZE" \
      sh -c "$(cat /job/install-command)" sh "$T" "${EXTRA[@]}"
    rc=$?
    ;;
  *) echo "E: unknown installer $INSTALLER"; exit 92 ;;
esac
echo "I: installer exited with status $rc"
for m in $(dmsetup ls 2>/dev/null | awk '/^loop/{print $1}'); do dmsetup remove --retry "$m"; done
losetup -D
if [ -f "$T" ]; then
  # The export disk, a sparse file on the host: dd skips the image's holes (3 GiB through 9p under TCG took 45 s).
  OUT=""
  for d in /dev/vdc /dev/ubdc; do [ -b "$d" ] && OUT=$d && break; done
  size=$(stat -c %s "$T")
  if [ -n "$OUT" ] && [ "$size" -le "$(blockdev --getsize64 "$OUT")" ]; then
    t0=$(date +%s)
    dd if="$T" of="$OUT" bs=4M conv=sparse status=none && sync || exit 93
    echo "$size" > /job/qemu.img.size
    echo "I: image written to the export disk in $(( $(date +%s) - t0 ))s"
  else
    cp --sparse=always "$T" /job/qemu.img || exit 93
  fi
fi
exit $rc
