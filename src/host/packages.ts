import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Deps } from '../context.js';

export interface HostTool {
  /** A command the pipeline runs, or an absolute file it reads. */
  command: string;
  /** The Debian/Ubuntu package that provides it. */
  package: string;
}

export function findOnPath(command: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (command.includes('/')) return isReadable(command) ? command : undefined;
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function isReadable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

let aptUpdated = false;

/**
 * Installs the packages of the tools that are missing, with apt-get (through sudo when not root),
 * saying what and why. Quick and silent-but-one-line when everything is present.
 */
export async function ensureHostTools(deps: Deps, stage: string, why: string, tools: readonly HostTool[]): Promise<void> {
  const missing = tools.filter((t) => !findOnPath(t.command, deps.env));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => t.package))];
  deps.reporter.info(
    `${stage}: installing ${pkgs.join(', ')} with apt-get for ${why} (missing: ${missing.map((t) => t.command).join(', ')})`,
  );
  const env = { ...deps.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    await deps.exec.run(['apt-get', 'update', '-q'], { stage, privileged: true, env, timeoutSeconds: 600 });
    aptUpdated = true;
  }
  await deps.exec.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs], {
    stage,
    privileged: true,
    env,
    timeoutSeconds: 1800,
  });
  const still = missing.filter((t) => !findOnPath(t.command, deps.env));
  if (still.length) {
    throw new Error(`apt-get installed ${pkgs.join(', ')} but ${still.map((t) => t.command).join(', ')} is still missing`);
  }
}
