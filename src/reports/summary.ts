import type { RunResult } from '../results.js';
import { renderPublishMarkdown } from '../publish/markdown.js';
import { otherOutcomes } from '../autopkgtest/summary.js';
import { tableCell } from './markdown.js';

const ICON: Record<string, string> = { passed: '✅', failed: '❌', skipped: '⏭️', 'not-run': '⏸️' };

/** The one-page Markdown summary: verdict first, then the stage table, then what matters for the verdict. */
export function renderRunSummary(result: RunResult): string {
  const cfg = result.config as Record<string, unknown>;
  const cellName = [cfg.release, cfg.firmware, cfg.installer, cfg.architecture].filter(Boolean).join(' · ');
  const lines: string[] = [];
  const verdict =
    result.status === 'passed'
      ? '✅ passed'
      : `❌ failed${result.failureKind === 'infrastructure' ? ' (infrastructure error)' : ''}`;
  lines.push(`## debian-vm-ci: ${verdict} — ${cellName}`, '');
  if (result.error) lines.push(`**${tableCell(result.error)}**`, '');
  if (result.accelWarning) lines.push(`> [!WARNING]`, `> ${result.accelWarning}`, '');
  const facts: string[] = [];
  if (result.accel) facts.push(`accelerator **${result.accel}**`);
  if (result.bootSeconds !== undefined) facts.push(`boot to login **${result.bootSeconds}s**`);
  if (result.goss)
    facts.push(
      `goss **${result.goss.tests - result.goss.failures - result.goss.skipped}/${result.goss.tests - result.goss.skipped} passed**`,
    );
  if (result.autopkgtest) {
    const a = result.autopkgtest;
    const more = otherOutcomes(a);
    facts.push(`autopkgtest **${a.passed}/${a.tests} passed**${more.length ? ` (${more.join(', ')})` : ''}`);
  }
  if (result.lifecycle) {
    const c = result.lifecycle;
    facts.push(
      c.passed
        ? `lifecycle **clean**`
        : `lifecycle **failed** (${c.leftovers} left behind, ${c.missing} gone, ${c.scriptErrors} script errors)`,
    );
  }
  if (result.upgrade) {
    const u = result.upgrade;
    const goss = u.goss && `goss ${u.goss.tests - u.goss.failures - u.goss.skipped}/${u.goss.tests - u.goss.skipped} passed`;
    const second = u.bootSeconds !== undefined ? `second boot ${u.bootSeconds}s` : undefined;
    facts.push(
      `upgrade ${u.from} → ${u.to} **${result.stages.some((s) => s.name === 'upgrade' && s.status === 'failed') ? 'failed' : 'passed'}**` +
        ` (${[`${u.upgraded} packages upgraded`, second, goss].filter(Boolean).join(', ')})`,
    );
  }
  if (result.lint) {
    const l = result.lint;
    facts.push(
      l.findings
        ? `shellcheck **${l.findings} findings** in ${l.files} scripts (${l.errors} errors, ${l.warnings} warnings, ${l.info} info, ${l.style} style)`
        : `shellcheck **clean** (${l.files} scripts)`,
    );
  }
  if (result.lintian)
    facts.push(`lintian **${result.lintian.tags} tags** (${result.lintian.errors} errors, ${result.lintian.warnings} warnings)`);
  facts.push(`total **${result.seconds}s**`);
  lines.push(facts.join(' · '), '');
  lines.push('| stage | status | seconds | result |', '| --- | --- | ---: | --- |');
  for (const s of result.stages) {
    const what = s.status === 'failed' ? (s.error ?? '') : (s.summary ?? '');
    lines.push(
      `| ${s.name} | ${ICON[s.status] ?? ''} ${s.status} | ${s.status === 'passed' || s.status === 'failed' ? s.seconds : ''} | ${tableCell(what)} |`,
    );
  }
  lines.push('');
  for (const s of result.stages) {
    if (s.status === 'failed' && s.details?.length) {
      lines.push(
        `<details open><summary>${s.name}: last lines</summary>`,
        '',
        '```text',
        ...s.details,
        '```',
        '',
        '</details>',
        '',
      );
    }
  }
  if (result.tables?.goss) lines.push(result.tables.goss, '');
  if (result.tables?.lifecycle) lines.push(result.tables.lifecycle, '');
  if (result.tables?.autopkgtest) lines.push(result.tables.autopkgtest, '');
  if (result.tables?.upgrade) lines.push(result.tables.upgrade, '');
  if (result.tables?.lint) {
    lines.push('<details><summary>shellcheck findings per file</summary>', '', result.tables.lint, '', '</details>', '');
  }
  if (result.publish) lines.push(renderPublishMarkdown({ summary: '', ...result.publish }));
  return lines.join('\n');
}
