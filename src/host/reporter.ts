import * as core from '@actions/core';

export interface AnnotationProps {
  title?: string;
  file?: string;
  startLine?: number;
  endLine?: number;
  startColumn?: number;
  endColumn?: number;
}

/** Where progress, annotations, outputs and the summary go: GitHub's runner or a terminal. */
export interface Reporter {
  readonly onGitHub: boolean;
  info(message: string): void;
  notice(message: string, props?: AnnotationProps): void;
  warning(message: string, props?: AnnotationProps): void;
  error(message: string, props?: AnnotationProps): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  setOutput(name: string, value: string | number): void;
  /**
   * Registers a value that must never be printed; redact() replaces it where it stands as a whole value.
   * `mask`: also let GitHub's runner mask it in the whole job log (for the generated password; a value
   * from `secrets.*` is masked by the runner already, and a test VM's password written in a public
   * workflow, such as `grml`, must not turn every `grml-debootstrap` into `***-debootstrap`).
   */
  setSecret(value: string, opts?: { mask?: boolean }): void;
  redact(text: string): string;
  /** JSON of a value with redact() applied to its strings only: valid JSON whatever the secret. */
  redactJson(value: unknown): string;
  writeSummary(markdown: string): Promise<void>;
}

/**
 * Where a secret stands as a value of its own: not inside a longer word, path or name. Letters,
 * digits and the characters that join a word into a name (- _ . / + @) on either side mean it is
 * part of something else ("grml" in "grml-debootstrap" or "/tmp/grml.log").
 */
export function wholeValuePattern(secret: string): RegExp {
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}_./+@-])${escaped}(?![\\p{L}\\p{N}_./+@-])`, 'gu');
}

abstract class BaseReporter {
  private readonly patterns = new Map<string, RegExp>();
  setSecret(value: string, _opts?: { mask?: boolean }): void {
    if (value && !this.patterns.has(value)) this.patterns.set(value, wholeValuePattern(value));
  }
  redact(text: string): string {
    let out = text;
    for (const p of this.patterns.values()) out = out.replace(p, '***');
    return out;
  }
  redactJson(value: unknown, indent = 2): string {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? this.redact(v) : v), indent);
  }
}

export class GitHubReporter extends BaseReporter implements Reporter {
  readonly onGitHub = true;
  info(message: string): void {
    core.info(this.redact(message));
  }
  notice(message: string, props?: AnnotationProps): void {
    core.notice(this.redact(message), props);
  }
  warning(message: string, props?: AnnotationProps): void {
    core.warning(this.redact(message), props);
  }
  error(message: string, props?: AnnotationProps): void {
    core.error(this.redact(message), props);
  }
  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return core.group(name, fn);
  }
  setOutput(name: string, value: string | number): void {
    core.setOutput(name, String(value));
  }
  override setSecret(value: string, opts?: { mask?: boolean }): void {
    super.setSecret(value);
    if (value && opts?.mask) core.setSecret(value);
  }
  async writeSummary(markdown: string): Promise<void> {
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(this.redact(markdown), true).write();
  }
}

/** The CLI's reporter: timestamped lines on stderr/stdout, annotations as file:line:col lines. */
export class ConsoleReporter extends BaseReporter implements Reporter {
  readonly onGitHub = false;
  readonly outputs: Record<string, string> = {};
  private readonly start = Date.now();
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(l + '\n')) {
    super();
  }
  private stamp(): string {
    const s = Math.floor((Date.now() - this.start) / 1000);
    return `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}]`;
  }
  private annotate(level: string, message: string, props?: AnnotationProps): void {
    const where = props?.file
      ? `${props.file}${props.startLine ? `:${props.startLine}` : ''}${props.startColumn ? `:${props.startColumn}` : ''}: `
      : '';
    const title = props?.title ? `${props.title}: ` : '';
    this.write(`${this.stamp()} ${level}: ${where}${title}${this.redact(message)}`);
  }
  info(message: string): void {
    for (const line of this.redact(message).split('\n')) this.write(`${this.stamp()} ${line}`);
  }
  notice(message: string, props?: AnnotationProps): void {
    this.annotate('notice', message, props);
  }
  warning(message: string, props?: AnnotationProps): void {
    this.annotate('warning', message, props);
  }
  error(message: string, props?: AnnotationProps): void {
    this.annotate('error', message, props);
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.write(`${this.stamp()} ── ${name}`);
    return fn();
  }
  setOutput(name: string, value: string | number): void {
    this.outputs[name] = String(value);
  }
  async writeSummary(): Promise<void> {
    // The CLI's summary is summary.md in the output directory, written by the pipeline.
  }
}
