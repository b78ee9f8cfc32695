import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Config } from './config.js';
import type { Deps } from './deps.js';
import { releaseRank } from './debian.js';
import { EXIT } from './errors.js';
import type { RunResult } from './results.js';
import { isReportsArtifact } from './publish/naming.js';
import { tableCell } from './reports/markdown.js';

/** One matrix cell as the report shows it. */
export interface MatrixCell {
  /** The artifact (or directory) the cell's result.json came from. */
  source: string;
  release: string;
  hostRelease: string;
  firmware: string;
  installer: string;
  architecture: string;
  status: 'passed' | 'failed';
  error?: string;
  tests: number;
  failures: number;
  skipped: number;
  bootSeconds?: number;
  accel?: string;
  seconds?: number;
  /** When the cell ran the autopkgtest stage. */
  autopkgtest?: { tests: number; passed: number; failed: number };
}

export interface MatrixReport {
  result: 'passed' | 'failed';
  passed: number;
  failed: number;
  tests: number;
  failures: number;
  cells: MatrixCell[];
}

/** A cell's result.json, or why it could not be read (that cell then counts as failed). */
export type CellInput = { source: string; result: RunResult } | { source: string; unreadable: string };

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function toCell(input: CellInput): MatrixCell {
  if ('unreadable' in input) {
    return {
      source: input.source,
      release: '?',
      hostRelease: '?',
      firmware: '?',
      installer: '?',
      architecture: '?',
      status: 'failed',
      error: input.unreadable,
      tests: 0,
      failures: 0,
      skipped: 0,
    };
  }
  const { result } = input;
  const config = result.config ?? {};
  return {
    source: input.source,
    release: text(config.release),
    hostRelease: text(config.hostRelease),
    firmware: text(config.firmware),
    installer: text(config.installer),
    architecture: text(config.architecture),
    status: result.status === 'passed' ? 'passed' : 'failed',
    error: result.error,
    tests: result.goss?.tests ?? 0,
    failures: result.goss?.failures ?? 0,
    skipped: result.goss?.skipped ?? 0,
    bootSeconds: result.bootSeconds,
    accel: result.accel,
    seconds: result.seconds,
    autopkgtest: result.autopkgtest && {
      tests: result.autopkgtest.tests,
      passed: result.autopkgtest.passed,
      failed: result.autopkgtest.failed,
    },
  };
}

/** Pure: the matrix verdict and table rows (release, then firmware, installer, host release, architecture). */
export function aggregateMatrix(inputs: readonly CellInput[]): MatrixReport {
  const cells = inputs
    .map(toCell)
    .sort(
      (a, b) =>
        releaseRank(a.release) - releaseRank(b.release) ||
        a.release.localeCompare(b.release) ||
        a.firmware.localeCompare(b.firmware) ||
        a.installer.localeCompare(b.installer) ||
        releaseRank(a.hostRelease) - releaseRank(b.hostRelease) ||
        a.architecture.localeCompare(b.architecture) ||
        a.source.localeCompare(b.source),
    );
  const failed = cells.filter((c) => c.status === 'failed').length;
  return {
    result: failed > 0 || cells.length === 0 ? 'failed' : 'passed',
    passed: cells.length - failed,
    failed,
    tests: cells.reduce((n, c) => n + c.tests, 0),
    failures: cells.reduce((n, c) => n + c.failures, 0),
    cells,
  };
}

export function renderMatrixMarkdown(report: MatrixReport): string {
  const verdict = report.result === 'passed' ? '✅ passed' : '❌ failed';
  const lines = [
    `## debian-vm-ci matrix: ${verdict} — ${report.passed} of ${report.cells.length} cells passed`,
    '',
    `goss: **${report.tests - report.failures}/${report.tests}** tests passed across the matrix.`,
    '',
    '| release | firmware | installer | host release | arch | result | tests | failures | boot s | accel |',
    '| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | --- |',
  ];
  // The autopkgtest column only when a cell ran the stage: passed/run, and the failures.
  const dep8 = report.cells.some((c) => c.autopkgtest);
  if (dep8) {
    lines[lines.length - 2] += ' autopkgtest |';
    lines[lines.length - 1] += ' --- |';
  }
  for (const c of report.cells) {
    const a = c.autopkgtest;
    lines.push(
      `| ${c.release} | ${c.firmware} | ${c.installer} | ${c.hostRelease} | ${c.architecture} | ${
        c.status === 'passed' ? '✅ passed' : '❌ failed'
      } | ${c.tests} | ${c.failures} | ${c.bootSeconds ?? ''} | ${c.accel ?? ''} |` +
        (dep8 ? ` ${a ? `${a.passed}/${a.tests}${a.failed ? ` (${a.failed} failed)` : ''}` : ''} |` : ''),
    );
  }
  const failedCells = report.cells.filter((c) => c.status === 'failed' && c.error);
  if (failedCells.length) {
    lines.push('', '### Failed cells', '');
    for (const c of failedCells) lines.push(`- \`${c.source}\`: ${tableCell(c.error ?? '')}`);
  }
  lines.push('');
  return lines.join('\n');
}

function readCell(source: string, resultJson: string): CellInput {
  try {
    const result = JSON.parse(readFileSync(resultJson, 'utf8')) as RunResult;
    if (typeof result !== 'object' || result === null || typeof result.status !== 'string') {
      return { source, unreadable: `${resultJson} is not a debian-vm-ci result.json` };
    }
    return { source, result };
  } catch (error) {
    return { source, unreadable: `could not read ${resultJson}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Downloads every cell's reports artifact of this workflow run into outputDir/cells/<artifact>/. */
async function downloadCells(config: Config, deps: Deps): Promise<CellInput[]> {
  const github = deps.github;
  if (!github) return [];
  const reports = (await github.listArtifacts()).filter((a) => isReportsArtifact(a.name, config.artifactPrefix));
  deps.reporter.info(`report: ${reports.length} reports artifacts named ${config.artifactPrefix}-…-reports in this run`);
  const cells: CellInput[] = [];
  for (const artifact of reports) {
    const directory = join(config.outputDir, 'cells', artifact.name);
    try {
      await github.downloadArtifact(artifact.id, directory);
      cells.push(readCell(artifact.name, join(directory, 'result.json')));
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      deps.reporter.warning(`report: could not download ${artifact.name}: ${why}`);
      cells.push({ source: artifact.name, unreadable: `could not download the artifact: ${why}` });
    }
  }
  return cells;
}

/**
 * Outside GitHub: result.json files of cells already on disk below output-dir (one or two levels,
 * e.g. what `actions/download-artifact` or a loop of CLI runs left there).
 */
function localCells(outputDir: string): CellInput[] {
  const found: CellInput[] = [];
  const visit = (directory: string, depth: number): void => {
    if (depth > 2 || !existsSync(directory)) return;
    for (const entry of readdirSync(directory).sort()) {
      const path = join(directory, entry);
      if (!statSync(path).isDirectory()) continue;
      const resultJson = join(path, 'result.json');
      if (existsSync(resultJson)) found.push(readCell(relative(outputDir, path), resultJson));
      else visit(path, depth + 1);
    }
  };
  visit(outputDir, 1);
  return found;
}

/** mode: report: one table over the matrix's cells. Exit status 0 all passed, 1 any failed, 3 no cell found. */
export async function runReport(config: Config, deps: Deps): Promise<number> {
  mkdirSync(config.outputDir, { recursive: true });
  let inputs: CellInput[];
  try {
    inputs = deps.github ? await downloadCells(config, deps) : localCells(config.outputDir);
  } catch (error) {
    deps.reporter.error(`report: could not list the run's artifacts: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.infrastructure;
  }
  if (!deps.github)
    deps.reporter.info(`report: no GitHub artifact service; read ${inputs.length} result.json files below ${config.outputDir}`);
  if (inputs.length === 0) {
    deps.reporter.error(
      deps.github
        ? `report: no artifact named ${config.artifactPrefix}-…-reports in this workflow run; does this job run after the matrix (needs:) and use the same artifact-prefix?`
        : `report: no result.json found below ${config.outputDir}`,
    );
    deps.reporter.setOutput('result', 'failed');
    deps.reporter.setOutput('tests', 0);
    deps.reporter.setOutput('failures', 0);
    return EXIT.infrastructure;
  }
  const report = aggregateMatrix(inputs);
  const markdown = renderMatrixMarkdown(report);
  writeFileSync(join(config.outputDir, 'matrix.md'), markdown);
  writeFileSync(join(config.outputDir, 'matrix.json'), JSON.stringify(report, null, 2) + '\n');
  deps.reporter.info(`report: ${report.passed} of ${report.cells.length} cells passed; ${join(config.outputDir, 'matrix.md')}`);
  deps.reporter.setOutput('result', report.result);
  deps.reporter.setOutput('tests', report.tests);
  deps.reporter.setOutput('failures', report.failures);
  deps.reporter.setOutput('report-dir', config.outputDir);
  await deps.reporter.writeSummary(markdown).catch((error: unknown) => {
    deps.reporter.warning(`could not write the job summary: ${String(error)}`);
  });
  return report.failed > 0 ? EXIT.test : EXIT.passed;
}
