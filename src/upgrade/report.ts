/** The upgrade stage's reports: what apt changed, and its steps as a JUnit suite and a Markdown section. */
import { junitDocument } from '../reports/junit.js';
import { tableCell } from '../reports/markdown.js';
import { xmlAttr, xmlText } from '../reports/xml.js';

export interface PackageChanges {
  upgraded: string[];
  added: string[];
  removed: string[];
}

/** Most lines the guest's package lists may have: dpkg-query of a big desktop has a few thousand. */
const MAX_PACKAGES = 100_000;

/** `package<TAB>version` lines (dpkg-query -W) into a map; lines that are not that are left out. */
export function parsePackageList(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n').slice(0, MAX_PACKAGES)) {
    const m = /^([a-z0-9][a-z0-9+.:-]*)\t(\S+)$/.exec(line);
    if (m) map.set(m[1], m[2]);
  }
  return map;
}

/** Pure: which packages changed version, which are new and which are gone, each sorted. */
export function packageChanges(before: Map<string, string>, after: Map<string, string>): PackageChanges {
  const upgraded: string[] = [];
  const added: string[] = [];
  for (const [name, version] of after) {
    const old = before.get(name);
    if (old === undefined) added.push(name);
    else if (old !== version) upgraded.push(name);
  }
  const removed = [...before.keys()].filter((name) => !after.has(name));
  const sort = (a: string[]): string[] => a.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return { upgraded: sort(upgraded), added: sort(added), removed: sort(removed) };
}

/** One step of the upgrade as it appears in the reports. */
export interface UpgradeStep {
  name: string;
  /** undefined: passed; otherwise why it failed. */
  failure?: string;
  /** Text for the JUnit failure (apt's last lines, dpkg --audit). */
  body?: string;
  skipped?: boolean;
  /** What a passed step found (the kernel's version), for the Markdown table. */
  detail?: string;
}

/** The steps of an upgrade, in order: the reports list each, those not reached as skipped. */
export const UPGRADE_STEPS = [
  'apt sources',
  'apt-get update',
  'apt-get full-upgrade',
  'dpkg --audit',
  'kernel',
  'second boot',
  'goss after the upgrade',
] as const;
export type UpgradeStepName = (typeof UPGRADE_STEPS)[number];

/** The steps reached, then the others as skipped. */
export function allSteps(done: readonly UpgradeStep[]): UpgradeStep[] {
  return [...done, ...UPGRADE_STEPS.filter((n) => !done.some((d) => d.name === n)).map((name) => ({ name, skipped: true }))];
}

export function upgradeToJUnit(steps: readonly UpgradeStep[], suiteName: string, seconds?: number): string {
  const lines: string[] = [];
  for (const s of steps) {
    const open = `    <testcase name="${xmlAttr(s.name)}" classname="upgrade"`;
    if (s.skipped) lines.push(`${open}>`, '      <skipped/>', '    </testcase>');
    else if (!s.failure) lines.push(`${open}/>`);
    else
      lines.push(
        `${open}>`,
        `      <failure message="${xmlAttr(s.failure)}">${xmlText(s.body ?? '')}</failure>`,
        '    </testcase>',
      );
  }
  return junitDocument(
    suiteName,
    {
      tests: steps.length,
      failures: steps.filter((s) => s.failure).length,
      skipped: steps.filter((s) => s.skipped).length,
      seconds,
    },
    lines,
  );
}

export function upgradeToMarkdown(steps: readonly UpgradeStep[], heading: string, changes?: PackageChanges): string {
  const out = [`### ${heading}`, '', '| | step | result |', '|---|---|---|'];
  for (const s of steps) {
    const icon = s.skipped ? '⏭️' : s.failure ? '❌' : '✅';
    out.push(`| ${icon} | ${tableCell(s.name)} | ${tableCell(s.skipped ? 'not run' : (s.failure ?? s.detail ?? 'passed'))} |`);
  }
  out.push('');
  if (changes) {
    out.push(
      `apt changed **${changes.upgraded.length}** package versions, installed **${changes.added.length}** new and removed **${changes.removed.length}**` +
        (changes.removed.length
          ? ` (${changes.removed.slice(0, 10).join(', ')}${changes.removed.length > 10 ? ', …' : ''})`
          : '') +
        '.',
      '',
    );
  }
  return out.join('\n');
}
