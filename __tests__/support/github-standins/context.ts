import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { parseConfig, type Config } from '../../../src/config.js';
import type { Deps, Results, StageContext } from '../../../src/context.js';
import { cliInputs } from '../../../src/entry.js';
import { HostExec, StageLog } from '../../../src/host/exec.js';
import type { GitHubServices } from '../../../src/host/github.js';
import { outputPaths } from '../../../src/paths.js';
import { ResourceTracker } from '../../../src/state.js';
import { RecordingReporter } from './fakes.js';
import { parseContext } from '../parse-context.js';

const created: string[] = [];
// Tests leave nothing behind: every directory made here goes after the test file (vitest evaluates this module
// once per file; a process 'exit' handler never ran in its workers, and 900 directories piled up in /tmp).
afterAll(() => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `dvc-${name}-`));
  created.push(dir);
  return dir;
}

/** A Config as the CLI would build it from these flags (action.yml's defaults for the rest). */
export function testConfig(flags: Record<string, string> = {}): Config {
  const args = Object.entries({ 'working-directory': 'examples/hello', install: 'false', ...flags }).flatMap(([k, v]) => [
    `--${k}`,
    v,
  ]);
  return parseConfig(
    cliInputs(args),
    parseContext(process.cwd(), {
      defaultOutputDir: tempDir('out'),
      hostMirror: undefined,
      randomPassword: () => 'not-a-secret',
    }),
  );
}

export interface TestStage {
  ctx: StageContext;
  reporter: RecordingReporter;
  abort: AbortController;
}

/** A StageContext on a fresh output directory with real exec and the given (fake) services. */
export function stageContext(
  config: Config,
  github: GitHubServices | undefined,
  results: Results = {},
  extra: Record<string, unknown> = {},
): TestStage {
  const reporter = new RecordingReporter();
  const paths = outputPaths(config.outputDir);
  mkdirSync(paths.logs, { recursive: true });
  const deps: Deps = {
    exec: new HostExec(reporter, new ResourceTracker(join(tempDir('resources'), 'r.json'))),
    reporter,
    resources: new ResourceTracker(join(tempDir('resources'), 'r.json')),
    env: {},
    github,
    cacheDir: tempDir('cache'),
  };
  const abort = new AbortController();
  const log = new StageLog(join(paths.logs, 'publish.log'), (s) => s);
  const ctx: StageContext = {
    config,
    deps,
    results,
    paths,
    log,
    signal: abort.signal,
    progress: (message) => reporter.info(`publish: ${message}`),
    ...extra,
  };
  return { ctx, reporter, abort };
}
