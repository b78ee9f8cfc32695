import { FAILED_PREFIX, MILESTONE_PREFIX } from './build-env.js';

/** Lines of the build log kept in memory: enough to find the failing step and show what led to it. */
const KEPT_LINES = 400;
export const FAILURE_DETAIL_LINES = 30;

/**
 * Watches the build's output lines: keeps the tail for failure details and turns the build's
 * milestones into progress lines, so that a long build is never minutes of silence and never a flood.
 */
export class BuildLogWatcher {
  private readonly lines: string[] = [];
  private packagesSetUp = 0;
  private lastSetUpReport = 0;
  private lastProgress: number;
  failure: string | undefined;

  constructor(
    private readonly progress: (message: string) => void,
    private readonly now: () => number = Date.now,
    /** Milliseconds between "setting up packages" lines while apt installs. */
    private readonly setUpInterval = 15_000,
  ) {
    this.lastProgress = now();
  }

  onLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEPT_LINES) this.lines.shift();
    if (line.startsWith(FAILED_PREFIX)) {
      this.failure = line.slice(FAILED_PREFIX.length);
    } else if (line.startsWith(MILESTONE_PREFIX)) {
      this.report(line.slice(MILESTONE_PREFIX.length));
    } else if (/^dpkg-buildpackage: info: /.test(line) || /^I: (running apt-get update|creating tarball|success)/.test(line)) {
      this.report(line);
    } else if (line.startsWith('Setting up ')) {
      this.packagesSetUp += 1;
      if (this.now() - this.lastSetUpReport >= this.setUpInterval) {
        this.lastSetUpReport = this.now();
        this.report(`${this.packagesSetUp} packages set up so far (${line.replace(/ \.\.\.$/, '')})`);
      }
    }
  }

  /** Called periodically: a sign of life when nothing was reported for a while. */
  heartbeat(quietMs: number, elapsedSeconds: number): void {
    if (this.now() - this.lastProgress < quietMs) return;
    const last = this.lines.at(-1);
    this.report(`still working (${elapsedSeconds}s)${last ? `: ${last.slice(0, 160)}` : ''}`);
  }

  /** The last lines up to the failing step's own message, without mmdebstrap's clean-up chatter after it. */
  failureDetails(count = FAILURE_DETAIL_LINES): string[] {
    let end = this.lines.length;
    while (end > 0 && !this.lines[end - 1].startsWith(FAILED_PREFIX)) end -= 1;
    if (end === 0) end = this.lines.length;
    return this.lines.slice(Math.max(0, end - count), end);
  }

  private report(message: string): void {
    this.lastProgress = this.now();
    this.progress(message);
  }
}

/** Fields of a deb822 control file such as a .changes (continuation lines joined with newlines). */
export function parseControlFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  let current: string | undefined;
  for (const line of text.split('\n')) {
    if (/^\s/.test(line) && current) {
      fields[current] += '\n' + line.trim();
    } else {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      current = m?.[1];
      if (m) fields[m[1]] = m[2];
    }
  }
  return fields;
}
