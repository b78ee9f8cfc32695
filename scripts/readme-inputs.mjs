// Writes the inputs/outputs tables of README.md from action.yml (or, with --check, fails when they differ).
import { readFileSync, writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { parse } from 'yaml';

const action = parse(readFileSync('action.yml', 'utf8'));
const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ').trim();
const rows = [
  '| input | default | description |',
  '| --- | --- | --- |',
  ...Object.entries(action.inputs).map(
    ([k, v]) => `| \`${k}\` | ${v.default === '' ? '' : `\`${esc(v.default)}\``} | ${esc(v.description)} |`,
  ),
  '',
  '| output | description |',
  '| --- | --- |',
  ...Object.entries(action.outputs).map(([k, v]) => `| \`${k}\` | ${esc(v.description)} |`),
];
const begin = '<!-- inputs:begin (generated from action.yml by npm run readme) -->';
const end = '<!-- inputs:end -->';
const readme = readFileSync('README.md', 'utf8');
const start = readme.indexOf(begin);
const stop = readme.indexOf(end);
if (start < 0 || stop < 0) {
  console.error(`README.md lacks the ${begin} ... ${end} markers`);
  process.exit(1);
}
// Formatted the way prettier --check expects, so that the two checks agree.
const next = await format(`${readme.slice(0, start + begin.length)}\n${rows.join('\n')}\n${readme.slice(stop)}`, {
  ...(await resolveConfig('README.md')),
  parser: 'markdown',
});
if (process.argv.includes('--check')) {
  if (next !== readme) {
    console.error("README.md's inputs/outputs tables differ from action.yml: run 'npm run readme' and commit README.md");
    process.exit(1);
  }
  console.log('README.md inputs/outputs tables match action.yml');
} else {
  writeFileSync('README.md', next);
}
