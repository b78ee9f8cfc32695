import { describe, expect, it } from 'vitest';
import { actionMetadata } from '../src/action-metadata.js';
import {
  ARCHITECTURE,
  ARCHITECTURES,
  architectureOfElfMachine,
  dhcpClientPackage,
  hostArchitecture,
  RELEASES,
  releaseRank,
} from '../src/debian.js';

describe('Debian facts', () => {
  it('maps Node and ELF architectures both ways, and nothing else', () => {
    for (const a of ARCHITECTURES) {
      expect(hostArchitecture(ARCHITECTURE[a].nodeArch)).toBe(a);
      expect(architectureOfElfMachine(ARCHITECTURE[a].elfMachine)).toBe(a);
    }
    expect(hostArchitecture('ppc64')).toBeUndefined();
    expect(architectureOfElfMachine(40)).toBeUndefined(); // EM_ARM, 32-bit
  });

  it('this host, as Node reports it', () => {
    expect(hostArchitecture()).toBe(process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined);
  });

  it('sorts releases by Debian history, aliases after code names, unknown last', () => {
    const shuffled = ['unstable', 'sid', 'bookworm', 'whatever', 'trixie', 'stable', 'forky'];
    expect(shuffled.sort((a, b) => releaseRank(a) - releaseRank(b))).toEqual([
      'bookworm',
      'trixie',
      'forky',
      'sid',
      'stable',
      'unstable',
      'whatever',
    ]);
  });

  it('the DHCP client changes after trixie', () => {
    expect(dhcpClientPackage('bookworm')).toBe('isc-dhcp-client');
    expect(dhcpClientPackage('trixie')).toBe('isc-dhcp-client');
    expect(dhcpClientPackage('forky')).toBe('dhcpcd-base');
    expect(dhcpClientPackage('unstable')).toBe('dhcpcd-base');
  });

  it("action.yml's release inputs mention only releases the list has", () => {
    for (const name of ['release', 'host-release']) {
      const input = actionMetadata().inputs.find((i) => i.name === name);
      expect((RELEASES as readonly string[]).includes(input?.default ?? '')).toBe(true);
    }
  });
});
