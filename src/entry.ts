import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { actionMetadata } from './action-metadata.js';
import { InputError, parseConfig, type Config, type InputReader, type ParseContext } from './config.js';
import type { Deps } from './deps.js';
import { EXIT } from './errors.js';
import { HostExec } from './host/exec.js';
import { createGitHubServices } from './host/github.js';
import { hostDebianMirror } from './host/mirror.js';
import { ConsoleReporter, GitHubReporter, type Reporter } from './host/reporter.js';
import { runPipeline } from './pipeline.js';
import type { RunResult } from './results.js';
import { runReport } from './report-mode.js';
import { hostArchitecture } from './debian.js';
import { ResourceTracker, STATE_RESOURCE_FILE } from './state.js';

/** The CLI's output directory when output-dir is empty, below its working directory. */
export const CLI_OUTPUT_DIR = 'debian-vm-ci-out';

export function cacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.DEBIAN_VM_CI_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'debian-vm-ci');
}

/** The host facts parseConfig takes, read from this host (its apt sources, architecture and cores). */
export function parseContext(cwd: string, defaultOutputDir: string): ParseContext {
  return {
    cwd,
    defaultOutputDir,
    hostMirror: hostDebianMirror(),
    hostArchitecture: hostArchitecture(),
    cpus: cpus().length,
    randomPassword: () => randomBytes(18).toString('base64url'),
  };
}

/** Runs the configured mode with SIGINT/SIGTERM turned into a cancel that still publishes and cleans up. */
async function execute(
  config: Config,
  reporter: Reporter,
  resources: ResourceTracker,
  github: Deps['github'],
): Promise<RunResult | number> {
  // Only the generated password is masked in the whole job log: see Reporter.setSecret.
  reporter.setSecret(config.password, { mask: config.passwordGenerated });
  const deps: Deps = {
    exec: new HostExec(reporter, resources),
    reporter,
    resources,
    env: process.env,
    github,
    cacheDir: cacheDirectory(),
  };
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    reporter.warning(`received ${sig}: cancelling; reports and the serial log are still written`);
    controller.abort();
    if (signals > 1) {
      for (const line of resources.releaseAll()) reporter.info(`cleanup: ${line}`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (config.mode === 'report') return await runReport(config, deps);
    return await runPipeline(config, deps, controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const line of resources.releaseAll()) reporter.info(`cleanup: ${line}`);
    resources.dispose();
  }
}

/** The action's main step. */
export async function actionMain(): Promise<void> {
  const reporter = new GitHubReporter();
  const runnerTemp = process.env.RUNNER_TEMP || '/tmp';
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  let config: Config;
  try {
    const read: InputReader = (name) => core.getInput(name);
    config = parseConfig(read, parseContext(workspace, join(runnerTemp, 'debian-vm-ci')));
  } catch (e) {
    core.setFailed(e instanceof Error ? e.message : String(e));
    process.exitCode = EXIT.input;
    return;
  }
  // Outside a runner (no RUNNER_TEMP) the CLI's own per-user directory, never a guessable name in /tmp.
  const resourceFile = process.env.RUNNER_TEMP
    ? join(process.env.RUNNER_TEMP, `debian-vm-ci-resources-${process.pid}.json`)
    : join(cacheDirectory(), 'runs', `${process.pid}.json`);
  core.saveState(STATE_RESOURCE_FILE, resourceFile);
  const resources = new ResourceTracker(resourceFile);
  try {
    const result = await execute(config, reporter, resources, createGitHubServices(reporter));
    const code = typeof result === 'number' ? result : result.exitCode;
    if (code !== EXIT.passed) {
      core.setFailed(typeof result === 'number' ? 'the matrix has failed cells' : `debian-vm-ci ${result.error ?? 'failed'}`);
    }
  } catch (e) {
    core.setFailed(`debian-vm-ci crashed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}

function cliHelp(): string {
  const meta = actionMetadata();
  const width = Math.max(...meta.inputs.map((i) => i.name.length)) + 4;
  const lines = [
    'Usage: debian-vm-ci run [--INPUT VALUE ...]',
    '       debian-vm-ci cleanup      release VMs and temp dirs left by an interrupted run',
    '',
    'Runs the debian-vm-ci pipeline (accel, lint, package, install, boot, validate, publish) here.',
    'Every action input is a flag of the same name: --release trixie means release: trixie.',
    '',
    'Inputs:',
  ];
  for (const i of meta.inputs) {
    lines.push(`  --${i.name.padEnd(width)}${i.description.replace(/`/g, '')}`);
    lines.push(`  ${''.padEnd(width + 2)}default: ${i.default === '' ? '(empty)' : i.default}`);
  }
  lines.push('', 'Exit status: 0 passed, 1 test failure, 2 bad input, 3 infrastructure error.');
  return lines.join('\n');
}

/**
 * Parses --name value / --name=value flags into an input reader with action.yml's defaults. The password may
 * also come from the environment, so that it need not be on a command line others can read in ps:
 * DEBIAN_VM_CI_PASSWORD, or DEBIAN_VM_CI_PASSWORD_FILE (its first line); --password wins over both.
 */
export function cliInputs(args: readonly string[], env: NodeJS.ProcessEnv = {}): InputReader {
  const meta = actionMetadata();
  const known = new Map(meta.inputs.map((i) => [i.name, i.default]));
  const given = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new InputError('(command line)', arg, 'flags of the form --input-name value; see --help');
    const name = m[1];
    if (!known.has(name)) {
      const near = [...known.keys()].filter((k) => k.includes(name) || name.includes(k)).slice(0, 3);
      throw new InputError(
        '(command line)',
        `--${name}`,
        `the inputs listed by --help${near.length ? ` (did you mean ${near.map((n) => `--${n}`).join(', ')}?)` : ''}`,
      );
    }
    let value = m[2];
    if (value === undefined) {
      value = args[i + 1];
      if (value === undefined) throw new InputError(name, '', 'a value after the flag');
      i++;
    }
    given.set(name, value);
  }
  if (!given.has('password')) {
    if (env.DEBIAN_VM_CI_PASSWORD) given.set('password', env.DEBIAN_VM_CI_PASSWORD);
    else if (env.DEBIAN_VM_CI_PASSWORD_FILE) given.set('password', passwordFromFile(env.DEBIAN_VM_CI_PASSWORD_FILE));
  }
  return (name) => given.get(name) ?? known.get(name) ?? '';
}

/** The first line of the file DEBIAN_VM_CI_PASSWORD_FILE names, without its line end. */
function passwordFromFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(
      'password',
      `(DEBIAN_VM_CI_PASSWORD_FILE=${file})`,
      `a readable file (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  const line = text.split(/\r?\n/)[0];
  if (!line) throw new InputError('password', `(DEBIAN_VM_CI_PASSWORD_FILE=${file})`, 'a file whose first line is the password');
  return line;
}

/** The CLI twin; returns the exit status. */
export async function cliMain(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || rest.includes('--help')) {
    out(cliHelp());
    return command ? EXIT.passed : EXIT.input;
  }
  const reporter = new ConsoleReporter(out);
  if (command === 'cleanup') {
    const dir = join(cacheDirectory(), 'runs');
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
    for (const f of files) {
      const pid = Number(/(\d+)\.json$/.exec(f)?.[1]);
      // A run that is still going keeps its VMs.
      if (pid && existsSync(`/proc/${pid}`)) {
        out(`cleanup: run ${pid} is still running; leaving its resources alone`);
        continue;
      }
      const tracker = new ResourceTracker(join(dir, f));
      for (const line of tracker.releaseAll()) out(`cleanup: ${line}`);
      tracker.dispose();
    }
    return EXIT.passed;
  }
  if (command !== 'run') {
    out(`unknown command '${command}'; see debian-vm-ci --help`);
    return EXIT.input;
  }
  let config: Config;
  try {
    // A name, resolved by parseConfig: a literal path here would make the bundler pack that directory (a
    // 3 GiB qemu.img once the main job had run) into dist/ as an asset.
    config = parseConfig(cliInputs(rest, process.env), parseContext(process.cwd(), CLI_OUTPUT_DIR));
  } catch (e) {
    out(`error: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT.input;
  }
  const runs = join(cacheDirectory(), 'runs');
  // Resources a killed earlier run left behind are released before this one starts.
  if (existsSync(runs)) {
    for (const f of readdirSync(runs).filter((n) => n.endsWith('.json'))) {
      const pid = Number(/(\d+)\.json$/.exec(f)?.[1]);
      if (pid && pid !== process.pid && !existsSync(`/proc/${pid}`)) {
        const earlier = new ResourceTracker(join(runs, f));
        for (const line of earlier.releaseAll()) out(`cleanup of an earlier run: ${line}`);
        earlier.dispose();
      }
    }
  }
  const resources = new ResourceTracker(join(runs, `${process.pid}.json`));
  try {
    const result = await execute(config, reporter, resources, undefined);
    if (typeof result === 'number') return result;
    out(`result: ${result.status}${result.error ? ` (${result.error})` : ''}; reports in ${config.outputDir}`);
    return result.exitCode;
  } catch (e) {
    out(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT.infrastructure;
  }
}
