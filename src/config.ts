import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ARCHITECTURES, CODENAMES, type Architecture } from './debian.js';
import { InputError } from './errors.js';
import {
  artifactPrefix,
  boolean,
  downloadTemplate,
  duration,
  globList,
  gossVersion,
  hostname,
  integer,
  LONE_SURROGATE,
  mirrorUrl,
  oneOf,
  outputDirectory,
  packageList,
  password,
  path,
  release,
  shellWords,
  size,
  versionSuffix,
} from './input-values.js';
import { checkInstaller, INSTALLER_NAMES, type Installer } from './install/installers.js';

/** A rejected input: names the input, the value given and what is allowed. Exit status 2. */
export { InputError } from './errors.js';
export type { Installer } from './install/installers.js';

export type Accel = 'auto' | 'kvm' | 'tcg';
export type Isolation = 'auto' | 'vm' | 'chroot';
export type Firmware = 'bios' | 'uefi';
export type { Architecture } from './debian.js';
export type LintSeverity = 'error' | 'warning' | 'info' | 'style';
export type UploadPolicy = 'always' | 'failure' | 'never';
/** When the guest's diagnostics (journal, dpkg -l, ...) are gathered: after every goss run, or only after a failure. */
export type DiagnosticsPolicy = 'always' | 'failure';
/** `default`: the installer's own configuration; `fast`: named shortcuts that change what is tested. */
export type InstallProfile = 'default' | 'fast';
export type LintianSeverity = 'error' | 'warning' | 'info' | 'pedantic';

export interface Config {
  readonly mode: 'run' | 'report';
  readonly workingDirectory: string;
  readonly outputDir: string;
  readonly release: string;
  readonly hostRelease: string;
  readonly architecture: Architecture;
  /** Empty when neither the input nor the host's apt sources name a Debian mirror. */
  readonly mirror: string;
  readonly accel: Accel;
  readonly lint: boolean;
  readonly lintPaths: readonly string[];
  readonly lintExclude: readonly string[];
  readonly lintSeverity: LintSeverity;
  readonly lintShell: '' | 'sh' | 'bash' | 'dash' | 'ksh';
  readonly lintFailOn: LintSeverity | 'never';
  readonly buildPackage: boolean;
  readonly buildRelease: string;
  readonly packageVersionSuffix: string;
  readonly lintian: boolean;
  readonly lintianFailOn: LintianSeverity | 'never';
  /** false: stop after lint and package (no install, boot or validate). */
  readonly install: boolean;
  readonly installBuiltPackages: boolean;
  readonly installer: Installer;
  readonly installProfile: InstallProfile;
  readonly installCommand: string;
  readonly installerArgs: readonly string[];
  readonly isolation: Isolation;
  /** false: apt accepts Release files past Valid-Until (snapshot mirrors). */
  readonly checkValidUntil: boolean;
  /** The builder VM's backend, named as debos' fakemachine names them. */
  readonly builderBackend: 'auto' | 'kvm' | 'uml' | 'qemu';
  readonly packages: readonly string[];
  readonly imageSizeBytes: number;
  /** As given (normalised), for installers that take a size string. */
  readonly imageSize: string;
  readonly hostname: string;
  readonly password: string;
  readonly passwordGenerated: boolean;
  readonly firmware: Firmware;
  readonly vmMemoryMiB: number;
  readonly vmCpus: number;
  /** restricted: the test VM reaches the run's apt proxy only; open: QEMU's user-mode network (vm/guest-network.ts). */
  readonly vmNetwork: 'restricted' | 'open';
  /** Seconds; undefined means the default for the accelerator in use. */
  readonly bootTimeout: number | undefined;
  readonly installTimeout: number;
  readonly validate: boolean;
  readonly gossfile: string;
  readonly gossVars: string;
  readonly gossRetryTimeout: number;
  readonly gossVersion: string;
  readonly gossPath: string;
  readonly gossDownloadUrl: string;
  readonly diagnostics: DiagnosticsPolicy;
  /** auto: when debian/tests/control exists and the package stage builds (see autopkgtestSkip). */
  readonly autopkgtest: 'auto' | 'true' | 'false';
  readonly autopkgtestTimeout: number;
  readonly lifecycle: boolean;
  readonly lifecycleTimeout: number;
  /** The release the upgrade stage upgrades the booted system to; empty: no upgrade. */
  readonly upgradeTo: string;
  /** The gossfile after the upgrade; empty: the gossfile. */
  readonly gossfileAfterUpgrade: string;
  readonly upgradeTimeout: number;
  readonly uploadImage: UploadPolicy;
  readonly artifactPrefix: string;
  readonly retentionDays: number;
  readonly cache: boolean;
}

/** Reads one raw input by its action.yml name; the default is already applied. */
export type InputReader = (name: string) => string;

export interface ParseContext {
  /** Base for relative paths (GITHUB_WORKSPACE or the CLI's cwd). */
  readonly cwd: string;
  /** Used when output-dir is empty; relative to cwd. */
  readonly defaultOutputDir: string;
  /** The mirror from the host's apt sources, if any. */
  readonly hostMirror: string | undefined;
  readonly hostArchitecture: Architecture | undefined;
  /** Cores of the runner, for vm-cpus 0. */
  readonly cpus: number;
  readonly randomPassword: () => string;
}

export const DEFAULT_BOOT_TIMEOUT = { kvm: 180, tcg: 600 } as const;

/** Reads every input once, validates it and returns a frozen Config. Throws InputError. */
export function parseConfig(read: InputReader, ctx: ParseContext): Config {
  const get = (name: string): string => {
    const value = read(name);
    // A lone surrogate cannot travel to a command line or a file intact (it becomes U+FFFD), nor can NUL.
    if (LONE_SURROGATE.test(value) || value.includes('\0')) {
      throw new InputError(name, value, 'text without NUL characters or broken UTF-16 (lone surrogates)');
    }
    return value;
  };
  const mode = oneOf('mode', get('mode').trim(), ['run', 'report'] as const);
  const workingDirectory = path('working-directory', get('working-directory') || '.', ctx.cwd, { mustExist: 'dir' });
  const outputDir = get('output-dir').trim()
    ? outputDirectory('output-dir', get('output-dir'), ctx.cwd, workingDirectory)
    : resolve(ctx.cwd, ctx.defaultOutputDir);
  const releaseName = release('release', get('release'));
  const hostRelease = release('host-release', get('host-release'));
  const arch = get('architecture').trim();
  const architecture =
    arch === 'auto'
      ? (ctx.hostArchitecture ??
        (() => {
          throw new InputError('architecture', arch, 'amd64 or arm64 (auto found an unsupported runner architecture)');
        })())
      : oneOf('architecture', arch, ARCHITECTURES);
  const mirror = get('mirror').trim() ? mirrorUrl('mirror', get('mirror')) : (ctx.hostMirror ?? '');
  const installer = oneOf('installer', get('installer').trim(), INSTALLER_NAMES);
  const installCommand = get('install-command').trim();
  checkInstaller(installer, {
    installCommand,
    installBuiltPackages: boolean('install-built-packages', get('install-built-packages')),
  });
  const validateStage = boolean('validate', get('validate'));
  const givenPassword = password('password', get('password'));
  const bootTimeoutRaw = get('boot-timeout').trim();
  const cpus = integer('vm-cpus', get('vm-cpus'), 0, 64);

  const config: Config = {
    mode,
    workingDirectory,
    outputDir,
    release: releaseName,
    hostRelease,
    architecture,
    mirror,
    accel: oneOf('accel', get('accel').trim(), ['auto', 'kvm', 'tcg'] as const),
    lint: boolean('lint', get('lint')),
    lintPaths: globList('lint-paths', get('lint-paths')),
    lintExclude: globList('lint-exclude', get('lint-exclude')),
    lintSeverity: oneOf('lint-severity', get('lint-severity').trim(), ['error', 'warning', 'info', 'style'] as const),
    lintShell: oneOf('lint-shell', get('lint-shell').trim(), ['', 'sh', 'bash', 'dash', 'ksh'] as const),
    lintFailOn: oneOf('lint-fail-on', get('lint-fail-on').trim(), ['error', 'warning', 'info', 'style', 'never'] as const),
    buildPackage: boolean('build-package', get('build-package')),
    buildRelease: get('build-release').trim() ? release('build-release', get('build-release')) : hostRelease,
    packageVersionSuffix: versionSuffix('package-version-suffix', get('package-version-suffix')),
    lintian: boolean('lintian', get('lintian')),
    lintianFailOn: oneOf('lintian-fail-on', get('lintian-fail-on').trim(), [
      'error',
      'warning',
      'info',
      'pedantic',
      'never',
    ] as const),
    install: boolean('install', get('install')),
    installBuiltPackages: boolean('install-built-packages', get('install-built-packages')),
    installer,
    installProfile: oneOf('install-profile', get('install-profile').trim(), ['default', 'fast'] as const),
    installCommand,
    installerArgs: shellWords('installer-args', get('installer-args')),
    checkValidUntil: boolean('check-valid-until', get('check-valid-until')),
    isolation: oneOf('isolation', get('isolation').trim(), ['auto', 'vm', 'chroot'] as const),
    builderBackend: oneOf('builder-backend', get('builder-backend').trim(), ['auto', 'kvm', 'uml', 'qemu'] as const),
    packages: packageList('packages', get('packages')),
    imageSizeBytes: size('image-size', get('image-size'), 256 * 1024 ** 2, 2 * 1024 ** 4),
    imageSize: get('image-size').trim().toUpperCase().replace(/I?B$/, ''),
    hostname: hostname('hostname', get('hostname')),
    password: givenPassword || ctx.randomPassword(),
    passwordGenerated: !givenPassword,
    firmware: oneOf('firmware', get('firmware').trim(), ['bios', 'uefi'] as const),
    vmMemoryMiB: size('vm-memory', get('vm-memory'), 256 * 1024 ** 2, 256 * 1024 ** 3) / 1024 ** 2,
    vmCpus: cpus === 0 ? Math.max(1, ctx.cpus) : cpus,
    vmNetwork: oneOf('vm-network', get('vm-network').trim(), ['restricted', 'open'] as const),
    bootTimeout: bootTimeoutRaw ? duration('boot-timeout', bootTimeoutRaw, 10, 4 * 3600) : undefined,
    installTimeout: duration('install-timeout', get('install-timeout'), 60, 6 * 3600),
    validate: validateStage,
    gossfile:
      mode === 'run' && validateStage && get('install').trim() !== 'false'
        ? path('gossfile', get('gossfile'), workingDirectory, { mustExist: 'file' })
        : get('gossfile').trim(),
    gossVars: get('goss-vars').trim() ? path('goss-vars', get('goss-vars'), workingDirectory, { mustExist: 'file' }) : '',
    gossRetryTimeout: duration('goss-retry-timeout', get('goss-retry-timeout'), 0, 3600),
    gossVersion: gossVersion('goss-version', get('goss-version')),
    gossPath: get('goss-path').trim() ? path('goss-path', get('goss-path'), ctx.cwd, { mustExist: 'file' }) : '',
    gossDownloadUrl: downloadTemplate('goss-download-url', get('goss-download-url')),
    diagnostics: oneOf('diagnostics', get('diagnostics').trim(), ['always', 'failure'] as const),
    autopkgtest: oneOf('autopkgtest', get('autopkgtest').trim(), ['auto', 'true', 'false'] as const),
    autopkgtestTimeout: duration('autopkgtest-timeout', get('autopkgtest-timeout'), 60, 6 * 3600),
    lifecycle: boolean('lifecycle', get('lifecycle')),
    lifecycleTimeout: duration('lifecycle-timeout', get('lifecycle-timeout'), 60, 6 * 3600),
    upgradeTo: get('upgrade-to').trim() ? release('upgrade-to', get('upgrade-to')) : '',
    gossfileAfterUpgrade:
      mode === 'run' && get('upgrade-to').trim() && get('gossfile-after-upgrade').trim()
        ? path('gossfile-after-upgrade', get('gossfile-after-upgrade'), workingDirectory, { mustExist: 'file' })
        : get('gossfile-after-upgrade').trim(),
    upgradeTimeout: duration('upgrade-timeout', get('upgrade-timeout'), 60, 6 * 3600),
    uploadImage: oneOf('upload-image', get('upload-image').trim(), ['always', 'failure', 'never'] as const),
    artifactPrefix: artifactPrefix('artifact-prefix', get('artifact-prefix')),
    retentionDays: integer('retention-days', get('retention-days'), 0, 90),
    cache: boolean('cache', get('cache')),
  };
  if (config.isolation === 'chroot') {
    throw new InputError('isolation', 'chroot', 'auto or vm (the chroot isolation is not available yet)');
  }
  if (config.mode === 'run' && config.autopkgtest === 'true') {
    const why = autopkgtestSkip(config);
    if (why) throw new InputError('autopkgtest', 'true', `a run where it can work (${why})`);
  }
  if (config.mode === 'run' && config.lifecycle && !(config.install && config.buildPackage)) {
    throw new InputError('lifecycle', 'true', 'a run that builds packages and installs a VM (build-package and install true)');
  }
  if (config.mode === 'run' && config.lifecycle && config.installBuiltPackages) {
    // With them in the image, the list of paths "before" would hold theirs: a purge would look like damage, and
    // what a purge leaves behind would already be there.
    throw new InputError(
      'lifecycle',
      'true',
      'an image without the built packages (install-built-packages: false): the life cycle starts from a system that never had them',
    );
  }
  if (config.upgradeTo) checkUpgrade(config);
  const afterUpgrade = get('gossfile-after-upgrade').trim();
  if (afterUpgrade && !config.upgradeTo) {
    throw new InputError('gossfile-after-upgrade', afterUpgrade, 'empty unless upgrade-to names a release');
  }
  if (config.architecture === 'arm64' && config.firmware === 'bios') {
    throw new InputError('firmware', 'bios', 'uefi on arm64 (arm64 has no BIOS)');
  }
  return Object.freeze(config);
}

/**
 * upgrade-to names a Debian release after `release`, both by code name (an alias such as stable moves, so the
 * order of two aliases is not known), and goss runs before and after the upgrade.
 */
function checkUpgrade(config: Config): void {
  const to = config.upgradeTo;
  const from = (CODENAMES as readonly string[]).indexOf(config.release);
  const target = (CODENAMES as readonly string[]).indexOf(to);
  if (target < 0) throw new InputError('upgrade-to', to, `a release code name (${CODENAMES.join(', ')})`);
  if (from < 0) {
    throw new InputError(
      'upgrade-to',
      to,
      `empty, or a release after release, given as a code name (release is ${config.release})`,
    );
  }
  if (target <= from) {
    throw new InputError('upgrade-to', to, `a release after ${config.release}: ${CODENAMES.slice(from + 1).join(', ')}`);
  }
  if (config.mode === 'run' && !(config.install && config.validate)) {
    throw new InputError(
      'upgrade-to',
      to,
      'a run that installs and validates a VM (install and validate true): goss runs before and after the upgrade',
    );
  }
}

/** The DEP-8 tests' control file of the project. */
export function autopkgtestControl(config: Config): string {
  return join(config.workingDirectory, 'debian', 'tests', 'control');
}

/** Why the autopkgtest stage does not apply to this configuration, or undefined when it runs. */
export function autopkgtestSkip(config: Config): string | undefined {
  if (config.autopkgtest === 'false') return 'autopkgtest: false';
  if (!config.install) return 'install: false, so there is no VM to test in';
  if (!config.buildPackage) return 'build-package: false, so there are no built packages to test';
  if (!existsSync(autopkgtestControl(config))) return 'the project has no debian/tests/control';
  return undefined;
}

/** The config as it may be shown in logs and result.json: no secrets. */
export function publicConfig(config: Config): Record<string, unknown> {
  const { password: _password, ...rest } = config;
  return { ...rest, password: config.passwordGenerated ? '(generated, not shown)' : '(given, not shown)' };
}

/** Every input name parseConfig reads; a test keeps this equal to action.yml's inputs. */
export const INPUT_NAMES = [
  'mode',
  'working-directory',
  'output-dir',
  'release',
  'host-release',
  'architecture',
  'mirror',
  'check-valid-until',
  'accel',
  'lint',
  'lint-paths',
  'lint-exclude',
  'lint-severity',
  'lint-shell',
  'lint-fail-on',
  'build-package',
  'build-release',
  'package-version-suffix',
  'lintian',
  'lintian-fail-on',
  'install',
  'install-built-packages',
  'installer',
  'install-profile',
  'install-command',
  'installer-args',
  'isolation',
  'builder-backend',
  'packages',
  'image-size',
  'hostname',
  'password',
  'firmware',
  'vm-memory',
  'vm-cpus',
  'vm-network',
  'boot-timeout',
  'install-timeout',
  'validate',
  'gossfile',
  'goss-vars',
  'goss-retry-timeout',
  'goss-version',
  'goss-path',
  'goss-download-url',
  'diagnostics',
  'autopkgtest',
  'autopkgtest-timeout',
  'lifecycle',
  'lifecycle-timeout',
  'upgrade-to',
  'gossfile-after-upgrade',
  'upgrade-timeout',
  'upload-image',
  'artifact-prefix',
  'retention-days',
  'cache',
] as const;
