import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../src/config.js';
import { parseContext } from './parse-context.js';
import type { Deps, Results, StageContext } from '../../src/context.js';
import { cacheDirectory, cliInputs } from '../../src/entry.js';
import { HostExec, StageLog, type Exec } from '../../src/host/exec.js';
import { hostDebianMirror } from '../../src/host/mirror.js';
import type { AnnotationProps, Reporter } from '../../src/host/reporter.js';
import { outputPaths } from '../../src/paths.js';
import { ResourceTracker, type Resource } from '../../src/state.js';

/** A reporter that keeps what a stage reports, so that tests can compare annotations and lines exactly. */
export class RecordingReporter implements Reporter {
  readonly onGitHub = false;
  readonly annotations: { level: 'error' | 'warning' | 'notice'; message: string; props: AnnotationProps | undefined }[] = [];
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(message);
  }
  notice(message: string, props?: AnnotationProps): void {
    this.annotations.push({ level: 'notice', message, props });
  }
  warning(message: string, props?: AnnotationProps): void {
    this.annotations.push({ level: 'warning', message, props });
  }
  error(message: string, props?: AnnotationProps): void {
    this.annotations.push({ level: 'error', message, props });
  }
  group<T>(_name: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  setOutput(): void {}
  setSecret(): void {}
  redact(text: string): string {
    return text;
  }
  redactJson(value: unknown): string {
    return JSON.stringify(value, null, 2);
  }
  async writeSummary(): Promise<void> {}
}

/** Remembers everything ever registered, so that a test can check that each one is gone. */
export class RecordingTracker extends ResourceTracker {
  readonly everAdded: Resource[] = [];
  override add(resource: Resource): number {
    this.everAdded.push(resource);
    return super.add(resource);
  }
}

export interface StageRun<R extends RecordingReporter = RecordingReporter> {
  name: string;
  ctx: StageContext;
  config: Config;
  reporter: R;
  resources: RecordingTracker;
  /** The stage's progress lines, in order. */
  progress: string[];
  outputDir: string;
}

export interface StageRunOptions<R extends RecordingReporter = RecordingReporter> {
  /** A RecordingReporter by default. */
  reporter?: R;
  /** Scratch directory of the test file: the run's output dir and resource file go below it. */
  scratch: string;
  /** Names the output dir, the resource file and (unless logName is given) the stage log. */
  name: string;
  /** logs/<logName>.log, as the pipeline names it after the stage. */
  logName?: string;
  /** CLI flags, as a user would give them (--validate false is added: no stage here needs a gossfile). */
  flags: readonly string[];
  results?: Results;
  /** Relative paths in flags resolve against this. */
  cwd: string;
  /** The real host by default; unit tests of a stage's own logic may pass another Exec. */
  exec?: (reporter: Reporter, resources: ResourceTracker) => Exec;
  /** The developer's cache directory by default (as the CLI uses it), so that warm caches stay warm. */
  cacheDir?: string;
  /** The host's own Debian mirror by default. */
  hostMirror?: string;
  password?: string;
  /** join(scratch, name) by default. */
  outputDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** A stage context as the pipeline builds it, from CLI flags, with recording reporter and tracker. */
export function stageRun<R extends RecordingReporter = RecordingReporter>(opts: StageRunOptions<R>): StageRun<R> {
  const outputDir = opts.outputDir ?? join(opts.scratch, opts.name);
  const reporter = opts.reporter ?? (new RecordingReporter() as R);
  const resources = new RecordingTracker(join(opts.scratch, `${opts.name}-resources.json`));
  const deps: Deps = {
    exec: opts.exec ? opts.exec(reporter, resources) : new HostExec(reporter, resources),
    reporter,
    resources,
    env: opts.env ?? process.env,
    github: undefined,
    cacheDir: opts.cacheDir ?? cacheDirectory(),
  };
  const config = parseConfig(
    cliInputs([...opts.flags, '--output-dir', outputDir, '--validate', 'false']),
    parseContext(opts.cwd, {
      defaultOutputDir: outputDir,
      hostMirror: 'hostMirror' in opts ? opts.hostMirror : hostDebianMirror(),
      randomPassword: () => opts.password ?? 'not-used',
    }),
  );
  const paths = outputPaths(outputDir);
  mkdirSync(paths.logs, { recursive: true });
  const progress: string[] = [];
  const log = new StageLog(join(paths.logs, `${opts.logName ?? opts.name}.log`), (s) => s);
  const ctx: StageContext = {
    config,
    deps,
    results: opts.results ?? {},
    paths,
    log,
    signal: new AbortController().signal,
    progress(message) {
      progress.push(message);
      log.line(`# ${message}`);
    },
  };
  return { name: opts.name, ctx, config, reporter, resources, progress, outputDir };
}
