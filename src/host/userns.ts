import type { Exec } from './exec.js';
import { runningAsRoot } from './process-tree.js';

/** How mmdebstrap runs where it needs no root of its own: unshare mode, or root mode through sudo. */
export interface MmdebstrapMode {
  mode: 'unshare' | 'root';
  /** One line for the log and the job summary: which mode and why. */
  why: string;
}

let probed: Promise<MmdebstrapMode> | undefined;

/**
 * Probes once per process whether this user can create the user namespace mmdebstrap's unshare mode
 * needs, by asking mmdebstrap itself (`--unshare-helper`): on Ubuntu 24.04 AppArmor lets
 * /usr/bin/mmdebstrap do so through its own profile while `unshare` is refused, and a user without an
 * /etc/subuid range fails here too. When it cannot, mmdebstrap runs in root mode through sudo.
 * Root needs no user namespace for unshare mode (measured under a seccomp filter that refuses them).
 */
export function mmdebstrapMode(exec: Exec, stage: string): Promise<MmdebstrapMode> {
  if (runningAsRoot()) return Promise.resolve({ mode: 'unshare', why: 'mmdebstrap runs in unshare mode (as root)' });
  probed ??= exec
    .run(['mmdebstrap', '--unshare-helper', '/bin/true'], { stage, check: false, timeoutSeconds: 60 })
    .then((r): MmdebstrapMode => {
      if (r.exitCode === 0) {
        return { mode: 'unshare', why: 'user namespaces are available to this user: mmdebstrap runs in unshare mode' };
      }
      const said =
        (r.stderr + r.stdout)
          .split('\n')
          .map((l) => l.trim())
          .find((l) => /^E: /.test(l)) ?? `exit status ${r.exitCode}`;
      return {
        mode: 'root',
        why: `user namespaces are not available to this user (${said.replace(/^E: /, '')}): mmdebstrap runs in root mode through sudo`,
      };
    })
    .catch((e: unknown) => ({
      mode: 'root' as const,
      why: `the user namespace probe failed (${e instanceof Error ? e.message : String(e)}): mmdebstrap runs in root mode through sudo`,
    }));
  return probed;
}
