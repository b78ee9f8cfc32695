import { DefaultArtifactClient } from '@actions/artifact';
import * as cache from '@actions/cache';
import type { Reporter } from './reporter.js';

export interface UploadedArtifact {
  id: number;
  /** Bytes of the zip as uploaded. */
  size: number;
}

export interface ListedArtifact {
  id: number;
  name: string;
  size: number;
}

export interface UploadOptions {
  /** 0 or absent: the repository's retention setting. */
  retentionDays?: number;
  /** zip deflate level 0-9; 0 for content that is already compressed. */
  compressionLevel?: number;
}

/**
 * GitHub's artifact and cache services as the stages use them.
 * Absent (undefined in Deps) in the CLI and whenever the runner gave no runtime token.
 */
export interface GitHubServices {
  /** The web page of an artifact, for links in the summary; undefined when the run is unknown. */
  artifactUrl(id: number): string | undefined;
  /** Uploads files as one zip artifact; an artifact of the same name from an earlier attempt of this job is replaced. */
  uploadArtifact(
    name: string,
    files: readonly string[],
    rootDirectory: string,
    options: UploadOptions,
  ): Promise<UploadedArtifact>;
  /** The artifacts of this workflow run, newest per name. */
  listArtifacts(): Promise<ListedArtifact[]>;
  /** Downloads and unzips an artifact of this workflow run into directory. */
  downloadArtifact(id: number, directory: string): Promise<void>;
  /** false when the runner offers no cache service (GHES without one, or the cache URL missing). */
  readonly cacheAvailable: boolean;
  /** The key that matched (key itself or one of restoreKeys), or undefined on a miss; service errors are misses. */
  restoreCache(paths: string[], key: string, restoreKeys: string[]): Promise<string | undefined>;
  /** True when an entry with exactly this key exists (nothing is downloaded). */
  cacheExists(paths: string[], key: string): Promise<boolean>;
  /** The cache entry id, or -1 when the service did not take it (it logs why). */
  saveCache(paths: string[], key: string): Promise<number>;
}

/** The service answers a second upload of the same name in one run with 409; a job re-run does exactly that. */
function isNameConflict(error: unknown): boolean {
  return /\(409\)|already exists/i.test(error instanceof Error ? error.message : String(error));
}

class RunnerServices implements GitHubServices {
  private readonly artifacts = new DefaultArtifactClient();
  readonly cacheAvailable = cache.isFeatureAvailable();

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  artifactUrl(id: number): string | undefined {
    const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repository, GITHUB_RUN_ID: runId } = this.env;
    return server && repository && runId ? `${server}/${repository}/actions/runs/${runId}/artifacts/${id}` : undefined;
  }

  async uploadArtifact(
    name: string,
    files: readonly string[],
    rootDirectory: string,
    options: UploadOptions,
  ): Promise<UploadedArtifact> {
    const libraryOptions = {
      ...(options.retentionDays ? { retentionDays: options.retentionDays } : {}),
      ...(options.compressionLevel !== undefined ? { compressionLevel: options.compressionLevel } : {}),
    };
    const upload = () => this.artifacts.uploadArtifact(name, [...files], rootDirectory, libraryOptions);
    let response;
    try {
      response = await upload();
    } catch (error) {
      if (!isNameConflict(error)) throw error;
      await this.artifacts.deleteArtifact(name);
      response = await upload();
    }
    if (response.id === undefined) throw new Error(`the artifact service returned no id for ${name}`);
    return { id: response.id, size: response.size ?? 0 };
  }

  async listArtifacts(): Promise<ListedArtifact[]> {
    const { artifacts } = await this.artifacts.listArtifacts({ latest: true });
    return artifacts.map(({ id, name, size }) => ({ id, name, size }));
  }

  async downloadArtifact(id: number, directory: string): Promise<void> {
    await this.artifacts.downloadArtifact(id, { path: directory });
  }

  restoreCache(paths: string[], key: string, restoreKeys: string[]): Promise<string | undefined> {
    return cache.restoreCache(paths, key, restoreKeys);
  }

  async cacheExists(paths: string[], key: string): Promise<boolean> {
    return (await cache.restoreCache(paths, key, [], { lookupOnly: true })) === key;
  }

  saveCache(paths: string[], key: string): Promise<number> {
    return cache.saveCache(paths, key);
  }
}

/**
 * The real services when the runner handed this step a runtime token and the results service URL
 * (it does for every JavaScript action); undefined otherwise, and the stages keep files local.
 */
export function createGitHubServices(reporter: Reporter, env: NodeJS.ProcessEnv = process.env): GitHubServices | undefined {
  if (!env.ACTIONS_RUNTIME_TOKEN) return undefined;
  if (!env.ACTIONS_RESULTS_URL) {
    reporter.warning(
      'the runner set ACTIONS_RUNTIME_TOKEN but not ACTIONS_RESULTS_URL: artifacts and caches are off, files stay in the output directory',
    );
    return undefined;
  }
  return new RunnerServices(env);
}
