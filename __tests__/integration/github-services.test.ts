import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitHubServices, type GitHubServices } from '../../src/host/github.js';
import { startAzurite, type Azurite } from '../support/github-standins/azurite.js';
import { RecordingReporter } from '../support/github-standins/fakes.js';
import { snapshot, unzipTo, writeTree } from '../support/github-standins/files.js';
import { ResultsService } from '../support/github-standins/results-service.js';
import { tempDir } from '../support/github-standins/context.js';

// The real @actions/artifact and @actions/cache, in this process, against the Twirp stand-in and Azurite.
// They read the runner's variables from process.env on every call, so the test sets them for its duration.
let azurite: Azurite;
let service: ResultsService;
let services: GitHubServices;
const savedEnv = { ...process.env };
const seconds = (t0: number): number => Math.round(performance.now() - t0) / 1000;

beforeAll(async () => {
  azurite = await startAzurite();
  service = await new ResultsService(azurite).start();
  const workspace = tempDir('workspace');
  Object.assign(process.env, {
    ACTIONS_RUNTIME_TOKEN: service.tokenFor('job-1'),
    ACTIONS_RESULTS_URL: service.url,
    ACTIONS_CACHE_SERVICE_V2: 'True',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REPOSITORY: 'example/hello',
    GITHUB_RUN_ID: '4242',
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: tempDir('runner-temp'),
  });
  const created = createGitHubServices(new RecordingReporter());
  if (!created) throw new Error('createGitHubServices gave nothing although the runtime token is set');
  services = created;
}, 60_000);

afterAll(async () => {
  process.env = savedEnv;
  await service?.stop();
  await azurite?.stop();
});

describe('createGitHubServices', () => {
  it('gives nothing without a runtime token, and warns when the results URL is missing', () => {
    const reporter = new RecordingReporter();
    expect(createGitHubServices(reporter, {})).toBeUndefined();
    expect(createGitHubServices(reporter, { ACTIONS_RUNTIME_TOKEN: 'x' })).toBeUndefined();
    expect(reporter.text()).toMatch(/warning: the runner set ACTIONS_RUNTIME_TOKEN but not ACTIONS_RESULTS_URL/);
  });

  it('links artifacts to the run page', () => {
    expect(services.artifactUrl(7)).toBe('https://github.com/example/hello/actions/runs/4242/artifacts/7');
  });
});

describe('artifacts through @actions/artifact', () => {
  const root = tempDir('artifact-src');
  writeTree(root, 16);
  const files = [...snapshot(root).keys()].map((f) => join(root, f));

  it('uploads a zip whose content is byte for byte the files, and lists and downloads it', async () => {
    const t0 = performance.now();
    const uploaded = await services.uploadArtifact('cell-reports', files, root, { retentionDays: 3 });
    const uploadSeconds = seconds(t0);
    const stored = service.artifacts.find((a) => a.name === 'cell-reports');
    expect(stored).toMatchObject({ id: uploaded.id, finalized: true, size: uploaded.size, mimeType: 'application/zip' });
    expect(stored?.expiresAt).toBeDefined();
    expect(unzipTo(await service.artifactBlob('cell-reports'), tempDir('unzipped'))).toEqual(snapshot(root));

    expect(await services.listArtifacts()).toEqual([{ id: uploaded.id, name: 'cell-reports', size: uploaded.size }]);
    const target = tempDir('download');
    const t1 = performance.now();
    await services.downloadArtifact(uploaded.id, target);
    const downloadSeconds = seconds(t1);
    expect(snapshot(target)).toEqual(snapshot(root));
    console.log(
      `artifact: ${files.length} files, ${uploaded.size} bytes zipped; upload ${uploadSeconds}s, download+unzip ${downloadSeconds}s`,
    );
  });

  it('replaces the artifact of an earlier attempt of the job instead of failing with 409', async () => {
    const first = service.artifacts.find((a) => a.name === 'cell-reports');
    const again = await services.uploadArtifact('cell-reports', files.slice(0, 1), root, { compressionLevel: 0 });
    expect(again.id).not.toBe(first?.id);
    expect(service.artifacts.filter((a) => a.name === 'cell-reports')).toHaveLength(1);
    expect(service.calls.filter((c) => c.method === 'CreateArtifact').map((c) => c.status)).toEqual([200, 409, 200]);
  });
});

describe('caches through @actions/cache (service v2)', () => {
  const cacheDir = tempDir('cache');
  const apt = join(cacheDir, 'apt');
  writeTree(apt, 16);
  const original = snapshot(apt);
  const key = 'debian-vm-ci-v1-apt-trixie-on-trixie-amd64-0123456789abcdef-2026w48';

  it('saves a directory and restores it byte for byte by exact key', async () => {
    expect(services.cacheAvailable).toBe(true);
    const t0 = performance.now();
    const id = await services.saveCache([apt], key);
    const saveSeconds = seconds(t0);
    expect(id).toBeGreaterThan(0);
    const entry = service.caches.find((c) => c.key === key);
    expect(entry?.finalized).toBe(true);

    rmSync(apt, { recursive: true });
    const t1 = performance.now();
    expect(await services.restoreCache([apt], key, [])).toBe(key);
    const restoreSeconds = seconds(t1);
    expect(snapshot(apt)).toEqual(original);
    console.log(`cache: ${original.size} files, archive ${entry?.size} bytes; save ${saveSeconds}s, restore ${restoreSeconds}s`);
  });

  it('finds an older entry by restore-key prefix, and knows the exact key exists', async () => {
    const nextWeek = key.replace(/2026w48$/, '2026w49');
    rmSync(apt, { recursive: true });
    expect(await services.restoreCache([apt], nextWeek, [key.replace(/2026w48$/, '')])).toBe(key);
    expect(snapshot(apt)).toEqual(original);
    expect(await services.cacheExists([apt], key)).toBe(true);
    expect(await services.cacheExists([apt], nextWeek)).toBe(false);
  });

  it('misses for another shape and when the paths differ (the version covers them)', async () => {
    expect(
      await services.restoreCache([apt], 'debian-vm-ci-v1-apt-bookworm-x', ['debian-vm-ci-v1-apt-bookworm-']),
    ).toBeUndefined();
    const elsewhere = join(cacheDir, 'elsewhere');
    mkdirSync(elsewhere);
    expect(await services.restoreCache([elsewhere], key, [])).toBeUndefined();
  });

  it('answers -1, not an exception, when the key is taken', async () => {
    cpSync(apt, join(cacheDir, 'copy'), { recursive: true });
    expect(await services.saveCache([apt], key)).toBe(-1);
  });
});
