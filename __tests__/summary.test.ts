import { codeCell, tableCell } from '../src/reports/markdown.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../src/results.js';
import { renderRunSummary } from '../src/reports/summary.js';

// result.json files of real runs (a grml-debootstrap run that passed, an mmdebstrap run with a failing
// goss test; mirror host and paths replaced), and the summaries they render to, reviewed by eye.
const dir = join(import.meta.dirname, 'fixtures/summary');

describe('the job summary', () => {
  it.each(['passed', 'failed', 'upgraded'])('renders the %s run as checked in', (name) => {
    const result = JSON.parse(readFileSync(join(dir, `${name}.result.json`), 'utf8')) as RunResult;
    const markdown = renderRunSummary(result);
    if (process.env.UPDATE_FIXTURES) writeFileSync(join(dir, `${name}.summary.md`), markdown);
    expect(markdown).toBe(readFileSync(join(dir, `${name}.summary.md`), 'utf8'));
  });

  it('puts the verdict first and failures before passes', () => {
    const result = JSON.parse(readFileSync(join(dir, 'failed.result.json'), 'utf8')) as RunResult;
    const markdown = renderRunSummary(result);
    expect(markdown.split('\n')[0]).toBe('## debian-vm-ci: ❌ failed — trixie · bios · mmdebstrap · amd64');
    expect(markdown.indexOf('/etc/debian-vm-ci-missing')).toBeLessThan(markdown.indexOf('systemd-journald'));
    expect(markdown).toContain('falling back to TCG');
  });
});

describe('Markdown table cells', () => {
  it('escape pipes, HTML and newlines, and leave Markdown marks and names as they are', () => {
    expect(tableCell('a | b\nc `d`')).toBe('a \\| b<br>c `d`');
    expect(tableCell('<img src=x onerror=alert(1)> & <details>')).toBe(
      '&lt;img src=x onerror=alert(1)&gt; &amp; &lt;details&gt;',
    );
    expect(tableCell('hello-dvc_1.0.0_all.deb on qemu-system-x86_64\r\n')).toBe(
      'hello-dvc_1.0.0_all.deb on qemu-system-x86_64<br>',
    );
  });
  it('put a file name in a code span, unless it cannot be one', () => {
    expect(codeCell('bin/a|b.sh')).toBe('`bin/a\\|b.sh`');
    expect(codeCell('odd`name.sh')).toBe('odd`name.sh');
    expect(codeCell('two\nlines.sh')).toBe('two<br>lines.sh');
  });
});
