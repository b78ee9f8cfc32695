import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Deps } from '../deps.js';
import type { OutputPaths } from '../paths.js';

export interface ArtifactRecord {
  name: string;
  /** Absent when the files stayed local (no artifact service). */
  id?: number;
  /** Bytes uploaded (the zip), or of the local files when nothing was uploaded. */
  size: number;
  files: number;
  url?: string;
  /** Where the files are on this machine. */
  rootDirectory: string;
}

/** Regular files below path, or path itself; nothing when it does not exist. Symlinks are left out: they could point anywhere. */
export function filesBelow(path: string): string[] {
  if (!existsSync(path)) return [];
  const stat = lstatSync(path);
  if (stat.isFile()) return [path];
  if (!stat.isDirectory()) return [];
  return readdirSync(path)
    .sort()
    .flatMap((entry) => filesBelow(join(path, entry)));
}

/** What the reports artifact holds: reports, logs, serial console and diagnostics, whatever exists. */
export function reportFiles(paths: OutputPaths): string[] {
  return [
    paths.resultJson,
    paths.summaryMd,
    paths.goss,
    paths.lint,
    paths.serialLog,
    paths.logs,
    paths.diagnostics,
    paths.autopkgtest,
    paths.lifecycle,
    paths.upgrade,
  ].flatMap(filesBelow);
}

function totalBytes(files: readonly string[]): number {
  return files.reduce((sum, file) => sum + lstatSync(file).size, 0);
}

/**
 * Uploads files (below rootDirectory) as one artifact, or, without the artifact service, leaves them
 * where they are and says so. Upload errors are thrown to the caller.
 */
export async function publishArtifact(
  deps: Pick<Deps, 'github' | 'reporter'>,
  name: string,
  files: readonly string[],
  rootDirectory: string,
  options: { retentionDays: number; compressionLevel?: number },
): Promise<ArtifactRecord> {
  const local: ArtifactRecord = { name, size: totalBytes(files), files: files.length, rootDirectory };
  if (files.length === 0) {
    // The artifact library refuses an empty upload; an empty artifact would say nothing anyway.
    deps.reporter.info(`${name}: nothing to publish`);
    return local;
  }
  if (!deps.github) {
    const shown = files.slice(0, 10).map((f) => relative(rootDirectory, f));
    const more = files.length > shown.length ? ` and ${files.length - shown.length} more` : '';
    deps.reporter.info(
      `${name}: not uploaded (no GitHub artifact service); its ${files.length} files are in ${rootDirectory}: ${shown.join(', ')}${more}`,
    );
    return local;
  }
  const started = performance.now();
  const uploaded = await deps.github.uploadArtifact(name, files, rootDirectory, {
    retentionDays: options.retentionDays || undefined,
    compressionLevel: options.compressionLevel,
  });
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const url = deps.github.artifactUrl(uploaded.id);
  deps.reporter.info(
    `${name}: uploaded ${files.length} files as ${uploaded.size} bytes in ${seconds}s (artifact ${uploaded.id})${url ? `: ${url}` : ''}`,
  );
  return { ...local, id: uploaded.id, size: uploaded.size, url };
}
