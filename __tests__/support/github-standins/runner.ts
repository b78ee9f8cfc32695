import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** The dist/ under test: the committed one, or a private build (`node scripts/build.mjs /tmp/dist-e`). */
export const DIST_DIR = process.env.DVC_DIST_DIR || join(process.cwd(), 'dist');

interface ActionYaml {
  inputs: Record<string, { default?: string | number | boolean }>;
}

/**
 * INPUT_* as the runner sets them for a `uses:` step: every input of action.yml, the given value or the
 * default, named INPUT_<name upper-cased, spaces to underscores> with hyphens kept.
 */
export function inputEnv(given: Record<string, string>): Record<string, string> {
  const action = parse(readFileSync(join(process.cwd(), 'action.yml'), 'utf8')) as ActionYaml;
  const unknown = Object.keys(given).filter((name) => !(name in action.inputs));
  if (unknown.length) throw new Error(`not inputs of action.yml: ${unknown.join(', ')}`);
  return Object.fromEntries(
    Object.entries(action.inputs).map(([name, input]) => [
      `INPUT_${name.replace(/ /g, '_').toUpperCase()}`,
      given[name] ?? String(input.default ?? ''),
    ]),
  );
}

/** Parses a file the runner collects step results from (GITHUB_OUTPUT, GITHUB_STATE): name=value or heredoc form. */
export function parseFileCommand(path: string): Record<string, string> {
  const values: Record<string, string> = {};
  if (!existsSync(path)) return values;
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const heredoc = /^([^=<]+)<<(.+)$/.exec(lines[i]);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2], i + 1);
      values[heredoc[1]] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (lines[i].includes('=')) {
      values[lines[i].slice(0, lines[i].indexOf('='))] = lines[i].slice(lines[i].indexOf('=') + 1);
    }
  }
  return values;
}

/** One job's runner directories: the files GitHub's runner hands to each step. */
export class RunnerJob {
  readonly temp: string;
  readonly output: string;
  readonly summary: string;
  readonly state: string;

  constructor(
    readonly root: string,
    readonly workspace: string,
  ) {
    this.temp = join(root, 'runner-temp');
    mkdirSync(this.temp, { recursive: true });
    mkdirSync(join(root, 'tool-cache'), { recursive: true });
    this.output = join(root, 'github_output');
    this.summary = join(root, 'step_summary.md');
    this.state = join(root, 'github_state');
    for (const file of [this.output, this.summary, this.state, join(root, 'github_env'), join(root, 'github_path')]) {
      writeFileSync(file, '');
    }
  }

  /** The environment of a step of this job: no inherited GITHUB_* or ACTIONS_* from whoever runs the test. */
  env(services: { token: string; resultsUrl: string }, extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      RUNNER_TEMP: this.temp,
      RUNNER_TOOL_CACHE: join(this.root, 'tool-cache'),
      GITHUB_WORKSPACE: this.workspace,
      GITHUB_OUTPUT: this.output,
      GITHUB_STEP_SUMMARY: this.summary,
      GITHUB_STATE: this.state,
      GITHUB_ENV: join(this.root, 'github_env'),
      GITHUB_PATH: join(this.root, 'github_path'),
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_REPOSITORY: 'example/hello',
      GITHUB_RUN_ID: '4242',
      GITHUB_RUN_ATTEMPT: '1',
      ACTIONS_RUNTIME_TOKEN: services.token,
      ACTIONS_RESULTS_URL: services.resultsUrl,
      ACTIONS_CACHE_SERVICE_V2: 'True',
      // The runner sets the v1 URL too; with ACTIONS_CACHE_SERVICE_V2 the library must not use it.
      ACTIONS_CACHE_URL: 'http://127.0.0.1:9/unused-v1-cache/',
      ...extra,
    };
  }

  outputs(): Record<string, string> {
    return parseFileCommand(this.output);
  }

  /** What the post step gets: the runner turns each saved state into STATE_<name>. */
  stateEnv(): Record<string, string> {
    return Object.fromEntries(Object.entries(parseFileCommand(this.state)).map(([k, v]) => [`STATE_${k}`, v]));
  }
}

export interface StepRun {
  exitCode: number;
  log: string;
  seconds: number;
}

/**
 * Runs one entry point of the bundled action as the runner does: `node <dist>/<entry>/index.js`. A step
 * that hangs is stopped at the deadline (SIGTERM, SIGKILL 30 s later), as the runner does at a step's
 * timeout-minutes, and its test fails on the exit status and the note in the log.
 */
export function runStep(
  node: string,
  entry: 'main' | 'post',
  env: NodeJS.ProcessEnv,
  cwd: string,
  deadlineSeconds = 20 * 60,
): Promise<StepRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(node, [join(DIST_DIR, entry, 'index.js')], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = setTimeout(() => {
      log += `\n[runStep] ${entry} did not exit within ${deadlineSeconds}s: SIGTERM\n`;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    }, deadlineSeconds * 1000);
    child.on('error', (e) => {
      clearTimeout(deadline);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(deadline);
      resolve({ exitCode: code ?? -1, log, seconds: Math.round((performance.now() - started) / 100) / 10 });
    });
  });
}
