import type { LintianSeverity } from '../config.js';
import type { Reporter } from '../host/reporter.js';

export interface LintianTag {
  severity: LintianSeverity;
  /** The package the tag is about; ` source`, ` changes`, ` buildinfo` are kept as lintian prints them. */
  package: string;
  tag: string;
  /** Lintian's context, such as a file in the package: `[usr/bin/tool]`. */
  info: string;
  line: string;
}

const SEVERITY_BY_CODE: Record<string, LintianSeverity> = { E: 'error', W: 'warning', I: 'info', P: 'pedantic' };
const RANK: Record<LintianSeverity, number> = { pedantic: 0, info: 1, warning: 2, error: 3 };

/**
 * Tag lines of lintian's default output: `E: pkg: tag-name context`, `W: pkg source: tag`.
 * Experimental (X:), overridden (O:), masked (M:) and note (N:) lines are not findings and are skipped.
 */
export function parseLintian(output: string): LintianTag[] {
  const tags: LintianTag[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trimEnd();
    const m = /^([EWIP]): (\S+(?: (?:source|changes|buildinfo))?): (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    tags.push({ severity: SEVERITY_BY_CODE[m[1]], package: m[2], tag: m[3], info: m[4] ?? '', line });
  }
  return tags;
}

/** Tags at or above the fail-on severity; none for `never`. */
export function failingTags(tags: readonly LintianTag[], failOn: LintianSeverity | 'never'): LintianTag[] {
  if (failOn === 'never') return [];
  return tags.filter((t) => RANK[t.severity] >= RANK[failOn]);
}

/** One annotation per tag: errors as errors, warnings as warnings, info and pedantic as notices. */
export function annotateLintian(reporter: Reporter, tags: readonly LintianTag[]): void {
  for (const t of tags) {
    const message = `${t.package}: ${t.tag}${t.info ? ` ${t.info}` : ''}`;
    const props = { title: `lintian ${t.tag}` };
    if (t.severity === 'error') reporter.error(message, props);
    else if (t.severity === 'warning') reporter.warning(message, props);
    else reporter.notice(message, props);
  }
}

/** `2 errors, 1 warning` style counts, most severe first; `no tags` when clean. */
export function lintianCounts(tags: readonly LintianTag[]): string {
  const order: LintianSeverity[] = ['error', 'warning', 'info', 'pedantic'];
  const parts = order
    .map((s) => [s, tags.filter((t) => t.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}${n === 1 || s === 'info' || s === 'pedantic' ? '' : 's'}`);
  return parts.length ? parts.join(', ') : 'no tags';
}
