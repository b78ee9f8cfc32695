import type { Exec } from './host/exec.js';
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
