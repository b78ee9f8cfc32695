import { describe, expect, it } from 'vitest';
import { cellName, imageArtifactName, isReportsArtifact, reportsArtifactName } from '../src/publish/naming.js';

const cell = {
  artifactPrefix: 'debian-vm-ci',
  release: 'trixie',
  hostRelease: 'trixie',
  firmware: 'bios',
  architecture: 'amd64',
  installer: 'grml-debootstrap',
} as const;

describe('artifact names', () => {
  it('name every input a matrix varies, in a fixed order', () => {
    expect(reportsArtifactName(cell)).toBe('debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-reports');
    expect(imageArtifactName(cell)).toBe('debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-image');
  });

  it.each([
    ['release', { release: 'bookworm' }],
    ['host release', { hostRelease: 'bookworm' }],
    ['firmware', { firmware: 'uefi' }],
    ['architecture', { architecture: 'arm64' }],
    ['installer', { installer: 'mmdebstrap' }],
    ['prefix', { artifactPrefix: 'nightly' }],
  ] as const)('differ between cells that differ in %s', (_what, change) => {
    expect(cellName({ ...cell, ...change })).not.toBe(cellName(cell));
  });

  it.each([
    ['debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-reports', 'debian-vm-ci', true],
    ['debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-image', 'debian-vm-ci', false],
    ['other-trixie-on-trixie-bios-amd64-mmdebstrap-reports', 'debian-vm-ci', false],
    ['debian-vm-ci-reports', 'debian-vm-ci', true],
    ['debian-vm-cix-reports', 'debian-vm-ci', false],
  ])('%s is a reports artifact of prefix %s: %s', (name, prefix, expected) => {
    expect(isReportsArtifact(name, prefix)).toBe(expected);
  });
});
