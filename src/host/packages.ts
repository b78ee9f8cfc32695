import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Deps } from '../deps.js';
import { StageError } from '../errors.js';

export interface HostTool {
  /** A command the pipeline runs, or an absolute file it reads. */
  command: string;
  /** The Debian/Ubuntu package that provides it. */
  package: string;
  /** The caller can do without it (another backend): a package this distribution lacks is reported, not fatal. */
  optional?: boolean;
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

/** "ubuntu 24.04 (noble)", for messages about what a distribution packages. */
export function hostDistribution(root = '/'): string {
  try {
    const text = readFileSync(join(root, 'etc/os-release'), 'utf8');
    const field = (name: string): string => (new RegExp(`^${name}=(.*)$`, 'm').exec(text)?.[1] ?? '').replace(/"/g, '');
    const codename = field('VERSION_CODENAME');
    return `${field('ID') || 'this distribution'}${field('VERSION_ID') ? ` ${field('VERSION_ID')}` : ''}${codename ? ` (${codename})` : ''}`;
  } catch {
    return 'this distribution';
  }
}

/** The packages of the list that apt can install here: `apt-cache policy` names a candidate version. */
export function installableFromPolicy(output: string, packages: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (const block of output.split(/\n(?=\S)/)) {
    const name = /^(\S+):\s*$/m.exec(block)?.[1];
    const candidate = /^\s+Candidate:\s*(\S+)/m.exec(block)?.[1];
    if (name && packages.includes(name) && candidate && candidate !== '(none)') found.add(name);
  }
  return found;
}

let aptUpdated = false;

/**
 * Installs the packages of the tools that are missing, with apt-get (through sudo when not root),
 * saying what and why. Asks apt only for packages this distribution has: a missing optional one
 * (user-mode-linux on Ubuntu 24.04) is reported and returned, so that the caller does without it,
 * instead of aborting the whole installation; a missing required one is an error naming it.
 * Returns the optional tools that are still missing.
 */
export async function ensureHostTools(deps: Deps, stage: string, why: string, tools: readonly HostTool[]): Promise<HostTool[]> {
  const missing = tools.filter((t) => !findOnPath(t.command, deps.env));
  if (missing.length === 0) return [];
  const env = { ...deps.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    await deps.exec.run(['apt-get', 'update', '-q'], { stage, privileged: true, env, timeoutSeconds: 600 });
    aptUpdated = true;
  }
  const wanted = [...new Set(missing.map((t) => t.package))];
  const policy = await deps.exec.run(['apt-cache', 'policy', ...wanted], { stage, env, check: false });
  const installable = installableFromPolicy(policy.stdout, wanted);
  const unavailable = missing.filter((t) => !installable.has(t.package));
  const distribution = hostDistribution();
  const required = unavailable.filter((t) => !t.optional);
  if (required.length) {
    throw new StageError(
      stage,
      `${why} needs ${required.map((t) => `${t.command} (package ${t.package})`).join(', ')}, but ${distribution} has no installable package ${[...new Set(required.map((t) => t.package))].join(', ')}`,
    );
  }
  for (const t of unavailable) {
    deps.reporter.info(`${stage}: ${distribution} has no package ${t.package}: doing without ${t.command}`);
  }
  const pkgs = wanted.filter((p) => installable.has(p));
  if (pkgs.length) {
    deps.reporter.info(
      `${stage}: installing ${pkgs.join(', ')} with apt-get for ${why} (missing: ${missing
        .filter((t) => installable.has(t.package))
        .map((t) => t.command)
        .join(', ')})`,
    );
    await deps.exec.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs], {
      stage,
      privileged: true,
      env,
      timeoutSeconds: 1800,
    });
  }
  const still = missing.filter((t) => !findOnPath(t.command, deps.env));
  const stillRequired = still.filter((t) => !t.optional);
  if (stillRequired.length) {
    throw new StageError(
      stage,
      `apt-get installed ${pkgs.join(', ')} but ${stillRequired.map((t) => t.command).join(', ')} is still missing`,
    );
  }
  return still;
}
