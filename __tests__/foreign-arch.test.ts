import { describe, expect, it } from 'vitest';
import { hostArchitecture } from '../src/debian.js';
import { archTestSaysOk, ensureForeignArchitecture } from '../src/host/foreign-arch.js';
import type { Deps } from '../src/context.js';

describe('another architecture on this host', () => {
  it("reads arch-test's verdict: only '<arch>: ok' is yes", () => {
    expect(archTestSaysOk('arm64: ok\n', 'arm64')).toBe(true);
    expect(archTestSaysOk('arm64: not supported on this machine/kernel\n', 'arm64')).toBe(false);
    expect(archTestSaysOk('amd64: ok\n', 'arm64')).toBe(false);
    expect(archTestSaysOk('E: arch-test: unknown architecture arm64\n', 'arm64')).toBe(false);
    expect(archTestSaysOk('', 'arm64')).toBe(false);
  });

  it("needs nothing for the host's own architecture: no command runs", async () => {
    const host = hostArchitecture();
    if (!host) throw new Error(`this test runs on amd64 or arm64, not ${process.arch}`);
    const deps = {
      exec: {
        run: () => {
          throw new Error('no command should run for the native architecture');
        },
      },
    } as unknown as Deps;
    await expect(ensureForeignArchitecture(deps, 'install', host, 'the image')).resolves.toBe('native');
  });
});
