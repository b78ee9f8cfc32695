// Writes the inputs/outputs tables from action.yml: a compact one in README.md (each description's first sentence) and
// the complete descriptions in docs/inputs.md. With --check, fails when either file differs from what it would write.
import { readFileSync, writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { parse } from 'yaml';

const action = parse(readFileSync('action.yml', 'utf8'));
const flat = (s) => String(s).replace(/\s+/g, ' ').trim();
const esc = (s) => flat(s).replace(/\|/g, '\\|');
const ticks = (s) => (s.match(/`/g) ?? []).length;

// The first sentence, cut at a word to about `max` characters, never inside a `code span`.
const brief = (s, max = 96) => {
  const text = flat(s);
  const first = text.match(/^.*?[.!?](?=\s|$)/)?.[0] ?? text;
  if (first.length <= max) return first;
  let cut = first.slice(0, max + 1).replace(/\s+\S*$/, '');
  if (ticks(cut) % 2) cut = cut.slice(0, cut.lastIndexOf('`'));
  return `${cut.replace(/[\s,;:(]+$/, '')} …`;
};

// Prose wrapped at `width`, breaking only at spaces outside code spans and never before a word that would start a
// Markdown block (list item, heading, quote) at the beginning of a line.
const wrap = (s, width = 120) => {
  const lines = [];
  let line = '';
  for (const word of flat(s).split(' ')) {
    const inCode = ticks(line) % 2 === 1;
    const blockStart = /^([-+*>#]|\d+[.)])/.test(word);
    if (line && line.length + 1 + word.length > width && !inCode && !blockStart) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line].join('\n');
};

const inputs = Object.entries(action.inputs);
const outputs = [
  '| output | description |',
  '| --- | --- |',
  ...Object.entries(action.outputs).map(([k, v]) => `| \`${k}\` | ${esc(v.description)} |`),
];
const defaultOf = (v) => (v.default === '' ? '' : `\`${esc(v.default)}\``);
// A default too long for the compact table (goss-download-url's URL) is only linked there.
// A reference link keeps the column narrow: every row is padded to the widest cell.
const isLong = (v) => flat(v.default).length > 40;
const longOnes = inputs.filter(([, v]) => isLong(v)).map(([k]) => k);
const compactDefault = (k, v) => (isLong(v) ? `[long][d${longOnes.indexOf(k) + 1}]` : defaultOf(v));
const compact = [
  '| input | default | description |',
  '| --- | --- | --- |',
  ...inputs.map(([k, v]) => `| \`${k}\` | ${compactDefault(k, v)} | ${esc(brief(v.description))} |`),
  '',
  ...longOnes.map((k, i) => `[d${i + 1}]: docs/inputs.md#${k}`),
  '',
  ...outputs,
];
const full = [
  '# Inputs and outputs',
  '',
  '<!-- generated from action.yml by npm run readme (scripts/readme-inputs.mjs): edit action.yml, not this file -->',
  '',
  wrap(
    'Every input of action.yml with its complete description. The CLI takes each input as a flag of the same name (`release: sid` is `--release sid`), with the same default; `node dist/cli/index.js --help` lists them too. The [README](../README.md#inputs-and-outputs) has the compact table.',
  ),
  '',
  '## Inputs',
  '',
  ...inputs.flatMap(([k, v]) => [
    `### \`${k}\``,
    '',
    v.default === '' ? 'Default: empty.' : `Default: \`${flat(v.default)}\`.`,
    '',
    wrap(v.description),
    '',
  ]),
  '## Outputs',
  '',
  ...outputs,
];

// Formatted the way prettier --check expects, so that the two checks agree.
const formatted = async (file, text) => format(text, { ...(await resolveConfig(file)), parser: 'markdown' });

const begin = '<!-- inputs:begin (generated from action.yml by npm run readme) -->';
const end = '<!-- inputs:end -->';
const readme = readFileSync('README.md', 'utf8');
const start = readme.indexOf(begin);
const stop = readme.indexOf(end);
if (start < 0 || stop < 0) {
  console.error(`README.md lacks the ${begin} ... ${end} markers`);
  process.exit(1);
}
const files = {
  'README.md': await formatted(
    'README.md',
    `${readme.slice(0, start + begin.length)}\n${compact.join('\n')}\n${readme.slice(stop)}`,
  ),
  'docs/inputs.md': await formatted('docs/inputs.md', `${full.join('\n')}\n`),
};
const read = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};
if (process.argv.includes('--check')) {
  const stale = Object.keys(files).filter((file) => files[file] !== read(file));
  for (const file of stale) {
    console.error(`${file}'s inputs/outputs tables differ from action.yml: run 'npm run readme' and commit ${file}`);
  }
  if (stale.length) process.exit(1);
  console.log('README.md and docs/inputs.md inputs/outputs tables match action.yml');
} else {
  for (const [file, text] of Object.entries(files)) writeFileSync(file, text);
}
