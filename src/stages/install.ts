import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { formatBytes } from '../input-values.js';
import type { Stage, StageContext } from '../context.js';
import type { BootSpec } from '../results.js';
import { scratchBase, scratchDir, spaceShortfalls, type SpaceNeed } from '../host/scratch.js';
import { StageError } from '../errors.js';
import { AptProxy } from '../host/apt-proxy.js';
import { installWithBuilder } from '../install/builder-install.js';
import { installWithMmdebstrap } from '../install/mmdebstrap.js';
import { INSTALLERS, type Installer } from '../install/installers.js';

export interface InstallOptions {
  /** The .deb files the package stage built (installed into the image, or a built installer used as such). */
  debs: string[];
  /** The run's apt proxy, started: on 127.0.0.1 and, for a builder VM, on that VM's unix socket. */
  proxy: AptProxy;
  /** A scratch directory of the stage, removed after it. */
  work: string;
}

export interface InstallDone {
  boot: BootSpec;
  summary: string;
  /** Where the installer ran (a builder backend); the host when absent. */
  isolation?: string;
}

/** Each installer of src/install/installers.ts and what runs it. */
const RUN: Record<Installer, (ctx: StageContext, opts: InstallOptions) => Promise<InstallDone>> = {
  'grml-debootstrap': (ctx, opts) => installWithBuilder(ctx, ctx.config, ctx.paths, { ...opts, accel: ctx.results.accel }),
  command: (ctx, opts) => installWithBuilder(ctx, ctx.config, ctx.paths, { ...opts, accel: ctx.results.accel }),
  mmdebstrap: (ctx, opts) =>
    installWithMmdebstrap(ctx, ctx.config, ctx.paths, {
      work: opts.work,
      proxyPort: opts.proxy.port,
      debs: ctx.config.installBuiltPackages ? opts.debs : [],
      accel: ctx.results.accel?.accel ?? 'tcg',
    }),
};

function mirrorTrouble(proxy: AptProxy, mirror: string): string | undefined {
  if (proxy.stats.errors.length === 0) return undefined;
  return `the Debian mirror ${mirror || '(installer default)'} could not be reached through the apt proxy: ${proxy.stats.errors.at(-1)}`;
}

/**
 * Fails fast when the image cannot fit: the image lands in the output directory; its root file system
 * (mmdebstrap) or the builder's scratch disk is made under the scratch base first.
 */
function checkFreeSpace(ctx: StageContext): void {
  const { config, paths, deps } = ctx;
  mkdirSync(paths.root, { recursive: true });
  const base = scratchBase(deps.env);
  const needs: SpaceNeed[] = [
    { dir: paths.root, bytes: config.imageSizeBytes, what: `the ${config.imageSize} image` },
    INSTALLERS[config.installer].inBuilder
      ? { dir: base, bytes: config.imageSizeBytes + 1024 ** 3, what: "the builder's scratch disk" }
      : { dir: base, bytes: config.imageSizeBytes, what: 'its root file system' },
  ];
  const short = spaceShortfalls(needs);
  if (short.length) {
    throw new StageError(
      'install',
      short
        .map(
          (s) =>
            `not enough free space in ${s.dir} for ${s.what}: ${s.needed} bytes (${formatBytes(s.needed)}) needed, ${s.available} bytes (${formatBytes(s.available)}) available`,
        )
        .join('; ') + ' (image-size, RUNNER_TEMP or TMPDIR, output-dir)',
      'infrastructure',
    );
  }
}

export const install: Stage<'install'> = {
  name: 'install',
  skipReason: (config) => (config.install ? undefined : 'install: false'),
  async run(ctx) {
    const { config, deps, results } = ctx;
    const debs = results.package?.debs ?? [];
    // config checked that the installer takes built packages; whether there are any is known only now.
    if (config.installBuiltPackages && debs.length === 0) {
      throw new StageError(
        'install',
        'install-built-packages is true but the package stage built no .deb (is build-package false?)',
      );
    }
    checkFreeSpace(ctx);
    const work = scratchDir(ctx, 'install');
    const proxy = AptProxy.forMirror(join(deps.cacheDir, 'apt'), config.mirror);
    const port = await proxy.start();
    ctx.progress(`apt proxy with cache ${join(deps.cacheDir, 'apt')} on 127.0.0.1:${port}`);
    try {
      let done: InstallDone;
      try {
        done = await RUN[config.installer](ctx, { debs, proxy, work: work.path });
      } catch (e) {
        const trouble = mirrorTrouble(proxy, config.mirror);
        if (trouble && e instanceof StageError) throw new StageError('install', `${trouble} (${e.message})`, e.kind, e.details);
        throw e;
      }
      const s = proxy.stats;
      ctx.progress(`apt cache: ${s.hits} hits, ${s.misses} misses, ${(s.bytesFromUpstream / 1e6).toFixed(1)} MB downloaded`);
      return {
        summary: `${done.summary}; apt cache ${s.hits} hits / ${s.misses} misses`,
        image: ctx.paths.imageFile,
        boot: done.boot,
        installer: config.installer,
        isolation: done.isolation ?? 'host',
        aptCache: { hits: s.hits, misses: s.misses, bytesFromCache: s.bytesFromCache, bytesFromUpstream: s.bytesFromUpstream },
      };
    } finally {
      await proxy.stop();
      work.release();
    }
  },
};
