import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import type { Stage, StageContext } from '../context.js';
import type { BuildEnvCache, PackageResult } from '../results.js';
import { copySourceTree } from '../package/source-tree.js';
import { buildOutputFiles } from '../package/output.js';
import { hostArchitecture, type Architecture } from '../debian.js';
import { StageError } from '../errors.js';
import { DEBIAN_KEYRING_TOOL } from '../host/mirror.js';
import { chownToCaller } from '../host/exec.js';
import { ensureForeignArchitecture } from '../host/foreign-arch.js';
import { ensureHostTools } from '../host/packages.js';
import { makeScratchDir } from '../host/scratch.js';
import { mmdebstrapMode } from '../host/userns.js';
import {
  type BuildMode,
  BUILD_SCRIPT,
  WORK_NAMES,
  buildArchitecture,
  buildArgv,
  buildEnvDir,
  buildEnvKey,
  buildEnvironment,
  createEnvArgv,
  pruneBuildEnvs,
} from '../package/build-env.js';
import { BuildLogWatcher, parseControlFields } from '../package/build-log.js';
import { addAutomatedBuildEntry, parseChangelogHead } from '../package/changelog.js';
import { annotateLintian, failingTags, lintianCounts, parseLintian } from '../package/lintian.js';

const STAGE = 'package';

// Generous: a real package's build and test suite under a busy runner, not a hang detector.
const BUILD_TIMEOUT_SECONDS = 3 * 3600;
const CREATE_ENV_TIMEOUT_SECONDS = 1800;
const HEARTBEAT_QUIET_MS = 30_000;

export const packageStage: Stage<'package'> = {
  name: 'package',
  skipReason: (config) => (config.buildPackage ? undefined : 'build-package: false'),
  run: buildPackage,
};

async function buildPackage(ctx: StageContext): Promise<PackageResult> {
  const started = performance.now();
  const { config, deps, paths } = ctx;
  const release = config.buildRelease;
  const controlPath = join(config.workingDirectory, 'debian', 'control');
  const changelogPath = join(config.workingDirectory, 'debian', 'changelog');
  if (!existsSync(controlPath) || !existsSync(changelogPath)) {
    throw new StageError(STAGE, `no debian/control and debian/changelog in ${config.workingDirectory}: nothing to build`, 'test');
  }
  // A source of Architecture: all packages only builds natively whatever the image's architecture.
  const architecture = buildArchitecture(readFileSync(controlPath, 'utf8'), config.architecture, hostArchitecture());
  let head;
  try {
    head = parseChangelogHead(readFileSync(changelogPath, 'utf8'));
  } catch (e) {
    throw new StageError(STAGE, (e as Error).message, 'test');
  }

  await ensureHostTools(deps, STAGE, 'a clean package build environment', [
    { command: 'mmdebstrap', package: 'mmdebstrap' },
    { command: 'newuidmap', package: 'uidmap' },
    DEBIAN_KEYRING_TOOL,
  ]);
  const buildMode = await mmdebstrapMode(deps.exec, STAGE);
  const { mode } = buildMode;
  ctx.progress(buildMode.why);
  const foreign = await ensureForeignArchitecture(deps, STAGE, architecture, `the ${architecture} package build`, ctx.log);
  if (foreign !== 'native')
    ctx.progress(`${architecture} programs run through qemu-user (${foreign}): the build is emulated, and slower`);

  // A previous run's packages would be handed to the install stage as if this run had built them.
  rmSync(paths.packages, { recursive: true, force: true });
  mkdirSync(paths.packages, { recursive: true });

  const scratch = makeScratchDir(deps, 'package', { prefix: 'debian-vm-ci', forSubUids: mode === 'unshare' });
  const work = scratch.path;
  try {
    copySourceTree(config.workingDirectory, join(work, WORK_NAMES.source), [config.outputDir, deps.cacheDir, work]);
    let version = head.version;
    if (config.packageVersionSuffix) {
      const copied = join(work, WORK_NAMES.source, 'debian', 'changelog');
      const entry = addAutomatedBuildEntry(readFileSync(copied, 'utf8'), config.packageVersionSuffix, release, new Date());
      writeFileSync(copied, entry.text);
      version = entry.version;
      ctx.progress(`changelog entry ${version} (${release}) added to the copy of the source`);
    }
    writeFileSync(join(work, WORK_NAMES.script), BUILD_SCRIPT, { mode: 0o755 });

    const cache = await provideBuildEnv(ctx, work, mode, architecture);
    symlinkSync(cache.path, join(work, WORK_NAMES.envTar));

    ctx.progress(`building ${head.source} ${version} for ${release}/${architecture} in a throwaway chroot`);
    const watcher = await runBuild(ctx, work, mode, architecture);
    if (watcher.failure !== undefined) {
      throw new StageError(
        STAGE,
        `${head.source} ${version} failed to build: ${watcher.failure}`,
        'test',
        watcher.failureDetails(),
      );
    }

    const out = join(work, WORK_NAMES.out);
    const { files: produced, refused } = buildOutputFiles(out);
    if (refused.length) {
      throw new StageError(
        STAGE,
        `the build of ${head.source} left files debian-vm-ci does not take: ${refused.join(', ')}`,
        'test',
      );
    }
    for (const f of produced) copyFileSync(join(out, f), join(paths.packages, f));
    const inPackages = (suffix: RegExp): string[] =>
      produced // sorted by buildOutputFiles
        .filter((f) => suffix.test(f))
        .map((f) => join(paths.packages, f));
    const debs = inPackages(/\.u?deb$/);
    const [changes] = inPackages(/\.changes$/);
    if (!changes || debs.length === 0) {
      throw new StageError(STAGE, `the build of ${head.source} finished without a .changes and .deb files`, 'infrastructure');
    }
    const fields = parseControlFields(readFileSync(changes, 'utf8'));
    const result: PackageResult = {
      summary: '',
      debs,
      changes,
      buildinfo: inPackages(/\.buildinfo$/)[0],
      sourceName: fields.Source?.split(' ')[0] ?? head.source,
      version: fields.Version ?? version,
      release,
      architecture,
      seconds: 0,
      cache,
      mmdebstrap: buildMode,
    };

    let lintianFailure: StageError | undefined;
    if (config.lintian) lintianFailure = reportLintian(ctx, out, result);

    result.seconds = Math.round((performance.now() - started) / 100) / 10;
    result.summary =
      `${result.sourceName} ${result.version}: ${debs.map((d) => basename(d)).join(', ')} for ${release}/${architecture} ` +
      `in ${Math.round(result.seconds)}s; build environment cache ${cache.hit ? 'hit' : 'miss'} (${cache.key}); ` +
      (mode === 'root' ? buildMode.why : 'mmdebstrap unshare mode') +
      (result.lintian ? `; lintian: ${lintianCounts(result.lintian.tags)}` : '');
    if (lintianFailure) {
      throw new StageError(STAGE, lintianFailure.message, 'test', lintianFailure.details, result);
    }
    return result;
  } finally {
    await removeWorkDir(ctx, work, mode);
    scratch.release();
  }
}

/** The cached build environment tarball, made first when this week's is missing. */
async function provideBuildEnv(
  ctx: StageContext,
  work: string,
  mode: BuildMode,
  architecture: Architecture,
): Promise<BuildEnvCache> {
  const { config, deps } = ctx;
  const release = config.buildRelease;
  const key = buildEnvKey({
    release,
    architecture,
    mirror: config.mirror,
    now: new Date(),
    checkValidUntil: config.checkValidUntil,
  });
  const dir = buildEnvDir(deps.cacheDir);
  const cached = join(dir, `${key}.tar`);
  if (config.cache && existsSync(cached)) {
    ctx.progress(`build environment: cache hit (${key})`);
    return { hit: true, key, path: cached };
  }
  ctx.progress(
    `build environment: cache ${config.cache ? 'miss' : 'disabled'}, creating ${key} with mmdebstrap (buildd variant)`,
  );
  const env = buildEnvironment(deps.env, { lintian: false, tmpdir: work });
  if (!config.cache) {
    const target = join(work, 'uncached-build-env.tar');
    await runCreateEnv(ctx, target, env, mode, architecture);
    return { hit: false, key, path: target };
  }
  mkdirSync(dir, { recursive: true });
  // Written beside the cache and renamed into place: a killed or concurrent run never leaves a half tarball under the key.
  const partial = mkdtempSync(join(dir, '.partial-'));
  const partialId = deps.resources.add({ kind: 'dir', name: 'partial build environment', path: partial });
  try {
    const target = join(partial, `${key}.tar`);
    await runCreateEnv(ctx, target, env, mode, architecture);
    renameSync(target, cached);
  } finally {
    rmSync(partial, { recursive: true, force: true });
    deps.resources.remove(partialId);
  }
  const pruned = pruneBuildEnvs(dir, release, architecture, key);
  if (pruned.length) ctx.progress(`build environment: pruned ${pruned.join(', ')}`);
  return { hit: false, key, path: cached };
}

async function runCreateEnv(
  ctx: StageContext,
  target: string,
  env: NodeJS.ProcessEnv,
  mode: BuildMode,
  architecture: Architecture,
): Promise<void> {
  const { config, deps } = ctx;
  const watcher = new BuildLogWatcher((m) => ctx.progress(m));
  const result = await deps.exec.run(
    createEnvArgv({
      release: config.buildRelease,
      architecture,
      mirror: config.mirror,
      target,
      checkValidUntil: config.checkValidUntil,
      mode,
    }),
    {
      stage: STAGE,
      env,
      privileged: mode === 'root',
      log: ctx.log,
      onLine: (l) => watcher.onLine(l),
      check: false,
      timeoutSeconds: CREATE_ENV_TIMEOUT_SECONDS,
      signal: ctx.signal,
      maxBuffer: 1024 * 1024,
    },
  );
  if (result.exitCode !== 0) {
    throw new StageError(
      STAGE,
      `mmdebstrap could not create the ${config.buildRelease}/${architecture} build environment (exit status ${result.exitCode})`,
      'infrastructure',
      watcher.failureDetails(),
    );
  }
  // Root mode wrote the tarball as root: the cache stays the user's.
  if (mode === 'root') await chownToCaller(ctx.deps.exec, [target], { stage: STAGE, log: ctx.log });
}

async function runBuild(ctx: StageContext, work: string, mode: BuildMode, architecture: Architecture): Promise<BuildLogWatcher> {
  const { config, deps } = ctx;
  const watcher = new BuildLogWatcher((m) => ctx.progress(m));
  const started = Date.now();
  const heartbeat = setInterval(() => watcher.heartbeat(HEARTBEAT_QUIET_MS, Math.round((Date.now() - started) / 1000)), 5000);
  try {
    const result = await deps.exec.run(
      buildArgv({
        release: config.buildRelease,
        architecture,
        mirror: config.mirror,
        checkValidUntil: config.checkValidUntil,
        mode,
      }),
      {
        stage: STAGE,
        cwd: work,
        privileged: mode === 'root',
        env: buildEnvironment(deps.env, { lintian: config.lintian, tmpdir: work }),
        log: ctx.log,
        onLine: (l) => watcher.onLine(l),
        check: false,
        timeoutSeconds: BUILD_TIMEOUT_SECONDS,
        signal: ctx.signal,
        maxBuffer: 1024 * 1024,
      },
    );
    if (result.exitCode !== 0 && watcher.failure === undefined) {
      throw new StageError(
        STAGE,
        `mmdebstrap exited with status ${result.exitCode} before the build finished`,
        'infrastructure',
        watcher.failureDetails(),
      );
    }
  } finally {
    clearInterval(heartbeat);
  }
  return watcher;
}

/** Annotates lintian's tags and records them; returns the failure the fail-on policy asks for, if any. */
function reportLintian(ctx: StageContext, out: string, result: PackageResult): StageError | undefined {
  const { config, deps, paths } = ctx;
  const reportFile = join(out, 'lintian.txt');
  const status = Number(readFileSync(join(out, 'lintian.status'), 'utf8').trim());
  const text = existsSync(reportFile) ? readFileSync(reportFile, 'utf8') : '';
  const report = join(paths.logs, 'lintian.txt');
  writeFileSync(report, text);
  // lintian exits 1 when it found tags at its own fail-on level; 2 and above mean it failed to run.
  if (status > 1) {
    return new StageError(STAGE, `lintian failed to run (exit status ${status}); see ${report}`, 'infrastructure');
  }
  const tags = parseLintian(text);
  annotateLintian(deps.reporter, tags);
  const failing = failingTags(tags, config.lintianFailOn);
  result.lintian = { tags, failing: failing.length, report };
  ctx.progress(`lintian: ${lintianCounts(tags)}`);
  if (failing.length === 0) return undefined;
  return new StageError(
    STAGE,
    `lintian: ${failing.length} tag${failing.length === 1 ? '' : 's'} at or above lintian-fail-on: ${config.lintianFailOn}`,
    'test',
    failing.slice(0, 30).map((t) => t.line),
  );
}

/**
 * A build killed half-way leaves mmdebstrap's chroot in the work directory: in unshare mode partly owned
 * by sub-uids the caller cannot delete (mmdebstrap's unshare helper removes it from inside the
 * namespace), in root mode owned by root (removed through sudo by the scratch dir's release).
 */
async function removeWorkDir(ctx: StageContext, work: string, mode: BuildMode): Promise<void> {
  if (mode === 'root') return;
  try {
    rmSync(work, { recursive: true, force: true });
  } catch {
    await ctx.deps.exec
      .run(['mmdebstrap', '--unshare-helper', 'rm', '-rf', '--', work], { stage: STAGE, check: false, timeoutSeconds: 300 })
      .catch(() => undefined);
  }
}
