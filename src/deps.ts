import type { Exec, StageLog } from './host/exec.js';
import type { GitHubServices } from './host/github.js';
import type { Reporter } from './host/reporter.js';
import type { ResourceTracker } from './state.js';

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

/**
 * What a domain module (install, builder, vm, goss) needs from the stage that calls it: the side effects, that
 * stage's log and progress line, and the cancel signal. The data it works on come as their own arguments.
 */
export interface StageIo {
  readonly deps: Deps;
  /** logs/<stage>.log */
  readonly log: StageLog;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** A progress line in the job log (and the stage log). */
  progress(message: string): void;
}
