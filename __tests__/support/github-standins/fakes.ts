import { cpSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Reporter } from '../../../src/host/reporter.js';
import type { GitHubServices, ListedArtifact, UploadOptions } from '../../../src/host/github.js';

/** A Reporter that keeps every line, for assertions on what the user is told. */
export class RecordingReporter implements Reporter {
  readonly onGitHub = false;
  readonly lines: string[] = [];
  readonly outputs: Record<string, string> = {};
  summary = '';
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
  notice(message: string): void {
    this.lines.push(`notice: ${message}`);
  }
  warning(message: string): void {
    this.lines.push(`warning: ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
  group<T>(_name: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  setOutput(name: string, value: string | number): void {
    this.outputs[name] = String(value);
  }
  setSecret(): void {}
  redact(text: string): string {
    return text;
  }
  redactJson(value: unknown): string {
    return JSON.stringify(value, null, 2);
  }
  async writeSummary(markdown: string): Promise<void> {
    this.summary += markdown;
  }
  text(): string {
    return this.lines.join('\n');
  }
}

/**
 * GitHubServices kept in memory: an artifact is a copy of its files, a cache entry a copy of its paths.
 * For unit tests of the stages' decisions; the real libraries are tested against the stand-ins.
 */
export class InMemoryServices implements GitHubServices {
  cacheAvailable = true;
  readonly uploads: { name: string; files: string[]; rootDirectory: string; options: UploadOptions }[] = [];
  readonly cacheEntries = new Map<string, Map<string, string>>();
  readonly saves: string[] = [];
  failUploads = false;
  failCaches = false;
  private nextId = 1;

  artifactUrl(id: number): string {
    return `https://github.com/example/hello/actions/runs/1/artifacts/${id}`;
  }
  async uploadArtifact(name: string, files: readonly string[], rootDirectory: string, options: UploadOptions) {
    if (this.failUploads) throw new Error('Failed to CreateArtifact: (503) Service Unavailable');
    this.uploads.push({ name, files: [...files], rootDirectory, options });
    return { id: this.nextId++, size: 100 * files.length };
  }
  async listArtifacts(): Promise<ListedArtifact[]> {
    return this.uploads.map((u, i) => ({ id: i + 1, name: u.name, size: 1 }));
  }
  async downloadArtifact(id: number, directory: string): Promise<void> {
    const upload = this.uploads[id - 1];
    for (const file of upload.files) {
      const target = directory + file.slice(upload.rootDirectory.length);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(file, target);
    }
  }
  async restoreCache(paths: string[], key: string, restoreKeys: string[]): Promise<string | undefined> {
    if (this.failCaches) throw new Error('cache service unreachable');
    const matched = this.cacheEntries.has(key)
      ? key
      : restoreKeys.map((p) => [...this.cacheEntries.keys()].reverse().find((k) => k.startsWith(p))).find(Boolean);
    if (!matched) return undefined;
    for (const [path, copy] of this.cacheEntries.get(matched) ?? []) {
      if (paths.includes(path)) cpSync(copy, path, { recursive: true });
    }
    return matched;
  }
  async cacheExists(_paths: string[], key: string): Promise<boolean> {
    return this.cacheEntries.has(key);
  }
  async saveCache(paths: string[], key: string): Promise<number> {
    if (this.failCaches) throw new Error('cache service unreachable');
    if (this.cacheEntries.has(key)) return -1;
    const copies = new Map<string, string>();
    for (const path of paths) {
      const copy = `${path}.saved-${this.nextId}`;
      cpSync(path, copy, { recursive: true });
      copies.set(path, copy);
    }
    this.cacheEntries.set(key, copies);
    this.saves.push(key);
    return this.nextId++;
  }
}
