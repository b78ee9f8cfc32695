import type { Config } from './config.js';
import type { FailureKind } from './errors.js';
import type { Exec, StageLog } from './host/exec.js';
import type { Reporter } from './host/reporter.js';
import type { ResourceTracker } from './state.js';
import type { OutputPaths } from './paths.js';
import type { AccelResult } from './stages/accel.js';
import type { LintResult } from './stages/lint.js';
import type { PackageResult } from './stages/package.js';
import type { InstallResult } from './stages/install.js';
import type { BootResult } from './stages/boot.js';
import type { ValidateResult } from './stages/validate.js';
import type { PublishResult } from './stages/publish.js';
import type { GitHubServices } from './host/github.js';
import type { CacheRecord } from './publish/caches.js';

/** The side effects a stage may use; entry points build the real ones, tests build their own. */
export interface Deps {
  readonly exec: Exec;
  readonly reporter: Reporter;
  readonly resources: ResourceTracker;
  readonly env: NodeJS.ProcessEnv;
  /** Artifact and cache services; undefined outside GitHub (the CLI). */
  readonly github: GitHubServices | undefined;
  /** Directory kept between runs (apt cache, build environments, builder images, goss). */
  readonly cacheDir: string;
}

/** What each stage hands on to the ones after it. */
export interface Results {
  accel?: AccelResult;
  lint?: LintResult;
  package?: PackageResult;
  install?: InstallResult;
  boot?: BootResult;
  validate?: ValidateResult;
  publish?: PublishResult;
}

export type StageName = keyof Results;
export const STAGE_NAMES: readonly StageName[] = ['accel', 'lint', 'package', 'install', 'boot', 'validate', 'publish'];

export interface StageContext {
  readonly config: Config;
  readonly deps: Deps;
  readonly results: Readonly<Results>;
  readonly paths: OutputPaths;
  /** logs/<stage>.log */
  readonly log: StageLog;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** A progress line in the job log (and the stage log). */
  progress(message: string): void;
  /** What restoreCaches found before the first stage; publish saves the caches that were not an exact hit. */
  readonly restoredCaches?: readonly CacheRecord[];
}

export interface Stage<K extends StageName> {
  readonly name: K;
  /** undefined when the stage runs; otherwise why it is skipped. */
  skipReason(config: Config, results: Readonly<Results>): string | undefined;
  run(ctx: StageContext): Promise<NonNullable<Results[K]>>;
}

export type StageStatus = 'passed' | 'failed' | 'skipped' | 'not-run';

export interface StageRecord {
  name: StageName;
  status: StageStatus;
  seconds: number;
  /** One line: what the stage found or did. */
  summary?: string;
  error?: string;
  failureKind?: FailureKind;
  details?: readonly string[];
}
