// Fails when a relative link or image in a tracked Markdown file names a file that does not exist, or an #anchor that
// names no heading of its target (GitHub's heading slugs). Links with a scheme (https:, mailto:, …) are not checked.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const files = execFileSync('git', ['ls-files', '-z', '--', '*.md'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((f) => f && !f.split('/').includes('node_modules'));

// Which lines belong to a fenced code block (its fences included).
const fenced = (lines) => {
  let fence = null;
  return lines.map((line) => {
    const open = line.match(/^ {0,3}(`{3,}|~{3,})/);
    if (!fence) {
      if (open) fence = open[1];
      return Boolean(open);
    }
    if (open && open[1][0] === fence[0] && open[1].length >= fence.length && !/\S/.test(line.slice(open[0].length))) fence = null;
    return true;
  });
};

// The text with code (fenced blocks, code spans) and HTML comments blanked out, line breaks kept, so that offsets
// still give line numbers and nothing inside code counts as a link.
const blank = (s) => s.replace(/[^\n]/g, ' ');
const prose = (text) => {
  const lines = text.split('\n');
  const code = fenced(lines);
  return lines
    .map((line, i) => (code[i] ? blank(line) : line))
    .join('\n')
    .replace(/<!--[\s\S]*?-->/g, blank)
    .replace(/(`+)(?!`)((?:(?!\n\s*\n)[\s\S])*?[^`])\1(?!`)/g, blank);
};

// GitHub's slug of a heading: its text as rendered, lowercased, punctuation other than - and _ dropped, each space a -.
const slug = (heading) =>
  heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\s-]/gu, '')
    .replace(/\s/g, '-');

const anchorsCache = new Map();
const anchorsOf = (file) => {
  if (anchorsCache.has(file)) return anchorsCache.get(file);
  const lines = readFileSync(file, 'utf8').split('\n');
  const code = fenced(lines);
  const seen = new Map();
  const anchors = new Set();
  const add = (s) => {
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    anchors.add(n ? `${s}-${n}` : s);
  };
  lines.forEach((line, i) => {
    if (code[i]) return;
    const atx = line.match(/^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/);
    if (atx) add(slug(atx[1] ?? ''));
    else if (
      /^ {0,3}(=+|-+)[ \t]*$/.test(line) &&
      i > 0 &&
      !code[i - 1] &&
      lines[i - 1].trim() &&
      !/^ {0,3}([-*+>#|]|\d+[.)])/.test(lines[i - 1])
    )
      add(slug(lines[i - 1]));
    for (const m of line.matchAll(/<a\s[^>]*?\b(?:name|id)=["']([^"']+)["']/gi)) anchors.add(m[1]);
  });
  anchorsCache.set(file, anchors);
  return anchors;
};

const link =
  /(!?)\[((?:[^[\]]|\[[^[\]]*\])*)\]\(\s*(<[^>\n]*>|(?:[^\s()]|\([^\s()]*\))*)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g;
const definition = /^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)/gm;

const decode = (s) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

let links = 0;
const failures = [];
for (const file of files) {
  const text = readFileSync(path.join(root, file), 'utf8');
  const scan = prose(text);
  const targets = [
    ...[...scan.matchAll(link)].map((m) => ({ index: m.index, dest: m[3] })),
    ...[...scan.matchAll(definition)].map((m) => ({ index: m.index, dest: m[1] })),
  ];
  for (const { index, dest } of targets) {
    const raw = dest.replace(/^<|>$/g, '');
    if (!raw || /^[a-z][a-z0-9+.-]*:/i.test(raw) || raw.startsWith('//')) continue;
    links++;
    const line = text.slice(0, index).split('\n').length;
    const fail = (why) => failures.push(`${file}:${line}: ${raw}: ${why}`);
    const hash = raw.indexOf('#');
    const target = decode((hash < 0 ? raw : raw.slice(0, hash)).replace(/\?.*$/, ''));
    const anchor = hash < 0 ? null : decode(raw.slice(hash + 1));
    const resolved = target
      ? path.join(target.startsWith('/') ? root : path.dirname(path.join(root, file)), target)
      : path.join(root, file);
    if (!existsSync(resolved)) {
      fail(`no such file ${path.relative(root, resolved) || '.'}`);
      continue;
    }
    if (anchor === null || anchor === '' || !statSync(resolved).isFile() || !/\.md$/i.test(resolved)) continue;
    if (!anchorsOf(resolved).has(anchor)) fail(`no heading #${anchor} in ${path.relative(root, resolved)}`);
  }
}
if (failures.length) {
  for (const f of failures) console.error(f);
  console.error(`${failures.length} of ${links} links do not resolve`);
  process.exit(1);
}
console.log(`${links} links in ${files.length} files resolve`);
