/** The JUnit XML document around a report's testcases (goss, autopkgtest, the life cycle): one suite. */
import { xmlAttr } from './xml.js';

export interface JUnitCounts {
  tests: number;
  failures: number;
  skipped: number;
  /** Seconds, written with milliseconds; left out when unknown. */
  seconds?: number;
}

/** `testcases` are the suite's lines, already indented by four spaces. */
export function junitDocument(suite: string, counts: JUnitCounts, testcases: readonly string[], timestamp?: Date): string {
  const time = counts.seconds === undefined ? '' : ` time="${counts.seconds.toFixed(3)}"`;
  const attrs = `tests="${counts.tests}" failures="${counts.failures}" errors="0" skipped="${counts.skipped}"${time}`;
  const stamp = timestamp ? ` timestamp="${timestamp.toISOString().replace(/\.\d+Z$/, '')}"` : '';
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xmlAttr(suite)}" ${attrs}>`,
    `  <testsuite name="${xmlAttr(suite)}" ${attrs}${stamp}>`,
    ...testcases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
