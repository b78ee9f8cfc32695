import type { Config } from '../config.js';

/** What makes one matrix cell different from another, in artifact-name order. */
type CellIdentity = Pick<Config, 'artifactPrefix' | 'release' | 'hostRelease' | 'firmware' | 'architecture' | 'installer'>;

/**
 * debian-vm-ci-trixie-on-bookworm-uefi-arm64-mmdebstrap: every input a matrix usually varies is in it,
 * so cells never collide (artifact names must be unique per workflow run) without the user naming them.
 */
export function cellName(config: CellIdentity): string {
  return [
    config.artifactPrefix,
    config.release,
    'on',
    config.hostRelease,
    config.firmware,
    config.architecture,
    config.installer,
  ].join('-');
}

export const REPORTS_SUFFIX = '-reports';
export const IMAGE_SUFFIX = '-image';

export function reportsArtifactName(config: CellIdentity): string {
  return cellName(config) + REPORTS_SUFFIX;
}

export function imageArtifactName(config: CellIdentity): string {
  return cellName(config) + IMAGE_SUFFIX;
}

/** Whether an artifact of this run is a cell's reports artifact under the given prefix. */
export function isReportsArtifact(name: string, prefix: string): boolean {
  return name.startsWith(`${prefix}-`) && name.endsWith(REPORTS_SUFFIX);
}
