import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Results } from '../src/context.js';
import { StageError } from '../src/errors.js';
import type { InstallResult, PublishResult } from '../src/results.js';
import { reportFiles } from '../src/publish/artifacts.js';
import { renderPublishMarkdown } from '../src/publish/markdown.js';
import { imageWanted, publish } from '../src/stages/publish.js';
import { InMemoryServices } from './support/github-standins/fakes.js';
import { stageContext, testConfig, type TestStage } from './support/github-standins/context.js';

/** An output directory as the stages before publish leave it, and the verdict the pipeline hands publish. */
function producedOutput(t: TestStage, status: 'passed' | 'failed', install: 'passed' | 'failed' | 'skipped' = 'skipped') {
  const { paths } = t.ctx;
  const stages = [
    { name: 'lint', status: 'passed' },
    { name: 'install', status: install },
  ];
  writeFileSync(paths.resultJson, JSON.stringify({ status, stages }));
  Object.assign(t.ctx, { runSoFar: { status, installRan: install !== 'skipped' } });
  writeFileSync(paths.summaryMd, '## summary\n');
  mkdirSync(paths.lint, { recursive: true });
  writeFileSync(join(paths.lint, 'shellcheck.json'), '[]');
  writeFileSync(join(paths.logs, 'lint.log'), 'lint log\n');
  writeFileSync(paths.serialLog, 'login:\n');
  mkdirSync(join(paths.diagnostics, 'nested'), { recursive: true });
  writeFileSync(join(paths.diagnostics, 'nested', 'screen.png'), 'png');
}

function writeRawImage(path: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', path, '32M']);
}

async function runPublish(t: TestStage): Promise<PublishResult> {
  try {
    return await publish.run(t.ctx);
  } finally {
    await t.ctx.log.close();
  }
}

describe('imageWanted', () => {
  it.each([
    ['always', 'passed', true],
    ['always', 'failed', true],
    ['failure', 'passed', false],
    ['failure', 'failed', true],
    ['never', 'passed', false],
    ['never', 'failed', false],
  ] as const)('upload-image: %s, run %s -> %s', (policy, status, expected) => {
    expect(imageWanted(policy, status)).toBe(expected);
  });
});

describe('publish stage', () => {
  it('outside GitHub keeps the files where they are and says where', async () => {
    const t = stageContext(testConfig(), undefined);
    producedOutput(t, 'passed');
    const result = await runPublish(t);
    expect(result.artifacts).toEqual([
      expect.objectContaining({
        name: 'debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-reports',
        files: 6,
        rootDirectory: t.ctx.paths.root,
      }),
    ]);
    expect(result.artifacts[0].id).toBeUndefined();
    expect(result.summary).toContain(`artifacts kept in ${t.ctx.paths.root}`);
    expect(result.cachesOff).toMatch(/no GitHub cache service/);
    expect(t.reporter.text()).toContain(`its 6 files are in ${t.ctx.paths.root}`);
    expect(renderPublishMarkdown(result)).toContain('Not uploaded (no GitHub artifact service)');
  });

  it('uploads every report, log and diagnostic file but its own unfinished log', async () => {
    const services = new InMemoryServices();
    const t = stageContext(testConfig({ 'retention-days': '5' }), services);
    producedOutput(t, 'passed');
    const expected = reportFiles(t.ctx.paths).filter((f) => !f.endsWith('publish.log'));
    const result = await runPublish(t);
    expect(services.uploads).toHaveLength(1);
    const [upload] = services.uploads;
    expect(upload.rootDirectory).toBe(t.ctx.paths.root);
    expect(upload.files.map((f) => relative(t.ctx.paths.root, f)).sort()).toEqual([
      'diagnostics/nested/screen.png',
      'lint/shellcheck.json',
      'logs/lint.log',
      'result.json',
      'serial.log',
      'summary.md',
    ]);
    expect(upload.files).toEqual(expected);
    expect(upload.options.retentionDays).toBe(5);
    expect(result.artifacts[0]).toMatchObject({ id: 1, url: 'https://github.com/example/hello/actions/runs/1/artifacts/1' });
    const markdown = renderPublishMarkdown(result);
    expect(markdown).toContain(
      '| [debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-reports](https://github.com/example/hello/actions/runs/1/artifacts/1) | 6 |',
    );
  });

  it('does not pass retention-days 0 on: the repository setting applies', async () => {
    const services = new InMemoryServices();
    const t = stageContext(testConfig(), services);
    producedOutput(t, 'passed');
    await runPublish(t);
    expect(services.uploads[0].options.retentionDays).toBeUndefined();
  });

  it('with upload-image: failure converts and uploads the image of a failed run, uncompressed by zip', async () => {
    const services = new InMemoryServices();
    const t = stageContext(testConfig({ install: 'true', validate: 'false' }), services);
    producedOutput(t, 'failed', 'failed');
    writeRawImage(t.ctx.paths.imageFile);
    const result = await runPublish(t);
    const imageUpload = services.uploads.find((u) => u.name.endsWith('-image'));
    expect(imageUpload?.name).toBe('debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-image');
    expect(imageUpload?.files).toEqual([
      join(t.ctx.paths.image, 'debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap.qcow2'),
    ]);
    expect(imageUpload?.options.compressionLevel).toBe(0);
    expect(result.image).toMatchObject({ rawBytes: 32 * 1024 * 1024, compression: 'zstd' });
    expect(renderPublishMarkdown(result)).toMatch(/Image: raw 32M .* → qcow2 \*\*/);
  });

  it('with upload-image: failure leaves the image of a passed run alone', async () => {
    const services = new InMemoryServices();
    const t = stageContext(testConfig({ install: 'true', validate: 'false' }), services);
    producedOutput(t, 'passed', 'passed');
    writeRawImage(t.ctx.paths.imageFile);
    const result = await runPublish(t);
    expect(result.image).toBeUndefined();
    expect(services.uploads.map((u) => u.name)).toEqual([expect.stringMatching(/-reports$/)]);
  });

  it('never publishes an image an earlier run left behind', async () => {
    const services = new InMemoryServices();
    const t = stageContext(testConfig({ 'upload-image': 'always' }), services);
    producedOutput(t, 'failed', 'skipped');
    writeRawImage(t.ctx.paths.imageFile);
    const result = await runPublish(t);
    expect(result.image).toBeUndefined();
    expect(t.reporter.text()).toContain('this run installed no image');
  });

  it('decides on the verdict the pipeline hands it, not on a result.json in the output directory', async () => {
    const t = stageContext(testConfig({ 'upload-image': 'failure' }), new InMemoryServices());
    producedOutput(t, 'failed', 'passed');
    // An earlier run's result.json (or one the guest could have written) says passed: it is not read.
    writeFileSync(t.ctx.paths.resultJson, JSON.stringify({ status: 'passed', stages: [{ name: 'install', status: 'passed' }] }));
    writeRawImage(t.ctx.paths.imageFile);
    const result = await runPublish(t);
    expect(result.image?.path).toMatch(/\.qcow2$/);
  });

  it("uses the image install reported even without the pipeline's verdict", async () => {
    const services = new InMemoryServices();
    const t = stageContext(testConfig({ 'upload-image': 'always' }), services);
    writeRawImage(t.ctx.paths.imageFile);
    // Only the fields publish reads; the install stage's result has more.
    const install = { summary: '', image: t.ctx.paths.imageFile, boot: { kind: 'disk' } } as InstallResult;
    const results: Results = { install };
    const withInstall = stageContext(t.ctx.config, services, results);
    const result = await runPublish(withInstall);
    expect(result.image?.path).toMatch(/\.qcow2$/);
  });

  it('fails on an upload error but still saves the caches and hands on what it did', async () => {
    const services = new InMemoryServices();
    services.failUploads = true;
    const t = stageContext(testConfig(), services);
    producedOutput(t, 'passed');
    mkdirSync(join(t.ctx.deps.cacheDir, 'apt'));
    writeFileSync(join(t.ctx.deps.cacheDir, 'apt', 'a.deb'), 'a');
    const error = await runPublish(t).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageError);
    expect((error as StageError).message).toMatch(/reports artifact: .*503/);
    expect(services.saves).toHaveLength(1);
    expect(((error as StageError).partial as PublishResult).caches.map((c) => c.outcome)).toContain('saved');
  });

  it('reports restore records the pipeline hands over next to the saves', async () => {
    const services = new InMemoryServices();
    const restored = [
      { name: 'apt' as const, phase: 'restore' as const, key: 'k', outcome: 'miss' as const, bytes: 0, seconds: 0.1 },
    ];
    const t = stageContext(testConfig(), services, {}, { restoredCaches: restored });
    producedOutput(t, 'passed');
    const result = await runPublish(t);
    expect(result.caches[0]).toBe(restored[0]);
    expect(renderPublishMarkdown(result)).toMatch(
      /\| apt \| `debian-vm-ci-v1-apt-[^`]+` \| miss \| skipped \(nothing to save\) \|/,
    );
  });
});
