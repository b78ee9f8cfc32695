import { readFileSync } from 'node:fs';
/**
 * The builder VM's recipe: the files baked into its image and the launcher that boots it under
 * User-Mode Linux. They are files next to this module (shellchecked by CI's lint run), bundled into
 * dist/ as they are; no input ever reaches them.
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
  // mmdebstrap's mmtarfilter (dpkg path filters at extraction: install-profile fast) is Python; mmdebstrap 1.6
  // (unstable) only recommends python3, and the fast profile failed there with "tarfilter failed: 32512".
  'python3',
  'debootstrap',
  'qemu-utils',
] as const;

/** Runs at boot in the builder (dvc-job.service): mounts the host's job dir, sets up modules and network, runs job.sh. */
export const JOB_RUNNER = readFileSync(new URL('./job-runner.sh', import.meta.url), 'utf8');

export const JOB_UNIT = readFileSync(new URL('./dvc-job.service', import.meta.url), 'utf8');

/**
 * grml-debootstrap runs `kpartx -d FILE` right after unmounting the target; in the builder the
 * mapped partition was still busy at that moment (seen: "remove ioctl on loop0p1 failed: Device or
 * resource busy" for every retry), which failed a finished installation. This wrapper (first in
 * PATH) settles udev, unmounts what still uses the maps, retries, says what held them, and as the
 * last resort asks device-mapper for deferred removal (done when the last user closes it).
 */
export const KPARTX_WRAPPER = readFileSync(new URL('./kpartx-wrapper.sh', import.meta.url), 'utf8');

/**
 * mmdebstrap --customize-hook script; $1 is the root file system, $2 the directory with the files
 * above, $3 where the image's kernel and initrd are copied for QEMU's direct kernel boot.
 */
export const CUSTOMIZE_HOOK = readFileSync(new URL('./customize-hook.sh', import.meta.url), 'utf8');

/**
 * Boots linux.uml with networking through libslirp-helper. Node cannot make a socketpair, so this
 * small launcher does: one end of socketpair(AF_UNIX, SOCK_DGRAM) goes to libslirp-helper, the
 * other to linux.uml, each as its fd 3 (as debos' fakemachine does). Everything stays in the
 * launcher's process group, so stopping that group stops UML and slirp too.
 */
export const UML_LAUNCHER = readFileSync(new URL('./uml-launcher.py', import.meta.url), 'utf8');
