/** The GitHub services the action talks to; absent in the CLI or without a runtime token. */
export interface GitHubServices {
  uploadArtifact(
    name: string,
    files: string[],
    rootDirectory: string,
    retentionDays: number,
  ): Promise<{ id?: number; size?: number }>;
  restoreCache(paths: string[], key: string, restoreKeys: string[]): Promise<string | undefined>;
  saveCache(paths: string[], key: string): Promise<number | undefined>;
}

import type { Config } from '../config.js';
import type { Reporter } from './reporter.js';

/** The real services when the runner gave us a runtime token; filled in by the publish work. */
export function createGitHubServices(_config: Config, _reporter: Reporter): GitHubServices | undefined {
  return undefined;
}
