import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import type { Deps } from '../../src/context.js';
import { hostArchitecture } from '../../src/debian.js';
import { resolveGoss, type ResolvedGoss } from '../../src/goss/binary.js';
import { HostExec, type Exec } from '../../src/host/exec.js';
import { hostDebianMirror } from '../../src/host/mirror.js';
import { ConsoleReporter } from '../../src/host/reporter.js';
import { ResourceTracker } from '../../src/state.js';

// The Debian path needs a Debian mirror: the host's (on a Debian host) or DEBIAN_VM_CI_MIRROR.
const mirror = process.env.DEBIAN_VM_CI_MIRROR || hostDebianMirror() || '';
const arch = hostArchitecture();
const root = mkdtempSync(join(tmpdir(), 'goss-binary-it-'));

interface Harness {
  deps: Deps;
  warnings: string[];
  commands: string[][];
  resources: ResourceTracker;
}

function harness(cacheDir: string, env: NodeJS.ProcessEnv = {}): Harness {
  const warnings: string[] = [];
  const commands: string[][] = [];
  const reporter = new ConsoleReporter((line) => {
    if (line.includes('warning:')) warnings.push(line);
  });
  const resources = new ResourceTracker(join(cacheDir, '..', `resources-${Math.random().toString(36).slice(2)}.json`));
  const host = new HostExec(reporter, resources);
  const exec: Exec = {
    run: (argv, opts) => {
      commands.push([...argv]);
      return host.run(argv, opts);
    },
    start: (name, argv, opts) => host.start(name, argv, opts),
  };
  return { deps: { exec, reporter, resources, env, github: undefined, cacheDir }, warnings, commands, resources };
}

function config(overrides: Partial<Config>): Config {
  return {
    architecture: arch,
    release: 'trixie',
    mirror,
    gossVersion: '0.4.9',
    gossPath: '',
    gossDownloadUrl: 'http://127.0.0.1:9/unused/{version}/goss-linux-{arch}',
    ...overrides,
  } as Config;
}

/** A port nothing listens on: connecting fails at once, like a runner without a route to GitHub. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const ourTempDirs = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('debian-vm-ci-goss-'));
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let debianGoss: ResolvedGoss;

describe('resolveGoss: Debian fallback (real apt, real mirror)', () => {
  const cacheDir = join(root, 'debian-cache');
  let unreachable: string;
  let aptListsBefore: string[];

  beforeAll(async () => {
    expect(mirror, 'no Debian mirror: run on a Debian host or set DEBIAN_VM_CI_MIRROR').toMatch(/^https?:\/\//);
    expect(arch, `unsupported host architecture ${process.arch}`).toBeDefined();
    unreachable = `http://127.0.0.1:${await closedPort()}/v{version}/goss-linux-{arch}`;
    aptListsBefore = readdirSync('/var/lib/apt/lists');
  });

  it('fetches goss with a private apt configuration, caches it and cleans up', async () => {
    const tempDirsBefore = ourTempDirs();
    const h = harness(cacheDir);
    debianGoss = await resolveGoss(config({ gossDownloadUrl: unreachable }), h.deps);

    expect(debianGoss).toMatchObject({ source: 'debian', origin: 'debian', version: '0.4.9' });
    expect(debianGoss.path).toBe(join(cacheDir, 'goss-debian', '0.4.9', arch!, 'goss'));
    // Measured: Debian links goss dynamically against glibc 2.34 (not runnable on bullseye).
    expect(debianGoss.requiredGlibc).toBe('2.34');
    expect(execFileSync(debianGoss.path, ['--help'], { encoding: 'utf8' })).toContain('validate');
    expect(h.warnings.join('\n')).toMatch(/Could not download goss 0\.4\.9 .*ECONNREFUSED.*Debian's goss package/);

    const aptCalls = h.commands.filter((c) => c[0] === 'apt-get');
    expect(aptCalls.map((c) => c.at(-1))).toEqual(['update', `goss:${arch}`]);
    for (const call of aptCalls) expect(call).toContain('Dir::Etc::sourceparts=-');
    expect(readdirSync('/var/lib/apt/lists')).toEqual(aptListsBefore);
    expect(ourTempDirs()).toEqual(tempDirsBefore);
    expect(h.resources.list()).toEqual([]);
  });

  it('uses the cached Debian build next time, without apt', async () => {
    const h = harness(cacheDir);
    const again = await resolveGoss(config({ gossDownloadUrl: unreachable }), h.deps);
    expect(again).toMatchObject({ source: 'cache', origin: 'debian', version: '0.4.9', path: debianGoss.path });
    expect(h.commands.filter((c) => c[0] === 'apt-get')).toEqual([]);
    expect(h.warnings.join('\n')).toMatch(/from the cache/);
  });

  it("warns that Debian's build cannot run in a bullseye guest", async () => {
    const h = harness(cacheDir);
    await resolveGoss(config({ gossDownloadUrl: unreachable, release: 'bullseye' }), h.deps);
    expect(h.warnings.join('\n')).toMatch(/needs glibc 2\.34; bullseye has 2\.31/);
  });

  it('fails with a clear message when there is no mirror to fall back to', async () => {
    const h = harness(join(root, 'no-mirror-cache'));
    await expect(resolveGoss(config({ gossDownloadUrl: unreachable, mirror: '' }), h.deps)).rejects.toThrow(
      /Could not download goss 0\.4\.9: .*ECONNREFUSED.*No Debian mirror/,
    );
  });
});

describe('resolveGoss: official release download (local server)', () => {
  let server: Server;
  let baseUrl: string;
  let binary: Buffer;
  const hits: string[] = [];
  let checksumBody = '';

  beforeAll(async () => {
    // The Debian build stands in for the release asset: real bytes, hashed like goss's release-build.sh.
    expect(debianGoss, 'the Debian fallback test must run first').toBeDefined();
    binary = readFileSync(debianGoss.path);
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      const asset = `/v0.4.9/goss-linux-${arch}`;
      if (req.url === asset) res.end(binary);
      else if (req.url === `${asset}.sha256`) res.end(checksumBody);
      else {
        res.statusCode = 404;
        res.end('Not Found');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  const template = (): string => `${baseUrl}/v{version}/goss-linux-{arch}`;

  it('downloads, verifies the published checksum and caches under cacheDir', async () => {
    checksumBody = `${sha256(binary)}  goss-linux-${arch}\n`;
    const cacheDir = join(root, 'download-cache');
    hits.length = 0;
    const first = await resolveGoss(config({ gossDownloadUrl: template() }), harness(cacheDir).deps);
    expect(first).toMatchObject({ source: 'download', origin: 'release', version: '0.4.9' });
    expect(first.path).toBe(join(cacheDir, 'goss', '0.4.9', arch!, 'goss'));
    expect(sha256(readFileSync(first.path))).toBe(sha256(binary));
    expect(hits.sort()).toEqual([`/v0.4.9/goss-linux-${arch}`, `/v0.4.9/goss-linux-${arch}.sha256`]);

    const second = await resolveGoss(config({ gossDownloadUrl: template() }), harness(cacheDir).deps);
    expect(second).toMatchObject({ source: 'cache', origin: 'release', path: first.path });
    expect(hits).toHaveLength(2);
  });

  it('rejects a checksum mismatch, naming both hashes, and neither caches nor falls back', async () => {
    const wrong = 'f'.repeat(64);
    checksumBody = `${wrong}  goss-linux-${arch}\n`;
    const cacheDir = join(root, 'mismatch-cache');
    const h = harness(cacheDir);
    const attempt = resolveGoss(config({ gossDownloadUrl: template() }), h.deps);
    await expect(attempt).rejects.toThrow(new RegExp(`Checksum mismatch.*says ${wrong}.*download is ${sha256(binary)}`));
    expect(existsSync(join(cacheDir, 'goss'))).toBe(false);
    expect(h.commands.filter((c) => c[0] === 'apt-get')).toEqual([]);
    expect(h.resources.list()).toEqual([]);
  });

  it('treats a missing release (404) as an error, not a reason to fall back', async () => {
    const h = harness(join(root, 'missing-cache'));
    await expect(resolveGoss(config({ gossDownloadUrl: template(), gossVersion: '9.9.9' }), h.deps)).rejects.toThrow(
      /goss-linux-.* does not exist \(HTTP 404\)/,
    );
    expect(h.commands).toEqual([]);
  });

  it('uses @actions/tool-cache when running as an action', async () => {
    checksumBody = `${sha256(binary)}  goss-linux-${arch}\n`;
    const toolCache = join(root, 'runner-tool-cache');
    const saved = { cache: process.env.RUNNER_TOOL_CACHE, temp: process.env.RUNNER_TEMP };
    process.env.RUNNER_TOOL_CACHE = toolCache;
    process.env.RUNNER_TEMP = join(root, 'runner-temp');
    try {
      const env = { RUNNER_TOOL_CACHE: toolCache };
      hits.length = 0;
      const first = await resolveGoss(config({ gossDownloadUrl: template() }), harness(join(root, 'unused'), env).deps);
      expect(first).toMatchObject({ source: 'download', path: join(toolCache, 'goss', '0.4.9', arch!, 'goss') });
      expect(existsSync(join(toolCache, 'goss', '0.4.9', `${arch}.complete`))).toBe(true);
      const second = await resolveGoss(config({ gossDownloadUrl: template() }), harness(join(root, 'unused'), env).deps);
      expect(second).toMatchObject({ source: 'cache', path: first.path });
      expect(hits).toHaveLength(2);
    } finally {
      process.env.RUNNER_TOOL_CACHE = saved.cache;
      process.env.RUNNER_TEMP = saved.temp;
      if (saved.cache === undefined) delete process.env.RUNNER_TOOL_CACHE;
      if (saved.temp === undefined) delete process.env.RUNNER_TEMP;
    }
  });
});

describe('resolveGoss: goss-path', () => {
  it("takes a local binary that runs (Debian's build has no --version: version unknown)", async () => {
    const h = harness(join(root, 'path-cache'));
    const local = await resolveGoss(config({ gossPath: debianGoss.path }), h.deps);
    expect(local).toMatchObject({ source: 'path', origin: 'path', path: debianGoss.path, version: 'unknown' });
    expect(h.commands.map((c) => c.slice(1))).toEqual([['--version'], ['--help']]);
  });

  it("rejects a file that is not a Linux binary for the image's architecture", async () => {
    const script = join(root, 'fake-goss');
    writeFileSync(script, '#!/bin/sh\necho goss version v0.4.9\n', { mode: 0o755 });
    await expect(resolveGoss(config({ gossPath: script }), harness(root).deps)).rejects.toThrow(
      /goss-path .*fake-goss is not a Linux executable, but the image is/,
    );
    const otherArch = arch === 'amd64' ? 'arm64' : 'amd64';
    await expect(resolveGoss(config({ gossPath: debianGoss.path, architecture: otherArch }), harness(root).deps)).rejects.toThrow(
      new RegExp(`is a Linux ${arch} binary, but the image is ${otherArch}`),
    );
  });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));
