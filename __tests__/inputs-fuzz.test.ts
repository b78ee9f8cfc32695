import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseContext } from './support/parse-context.js';
import { INPUT_NAMES, InputError, parseConfig, type Config } from '../src/config.js';
import { cliInputs } from '../src/entry.js';
import { jobParams } from '../src/install/builder-install.js';
import { mmdebstrapArgv } from '../src/install/mmdebstrap.js';

// Property-based tests over every input of action.yml with hostile values: shell metacharacters, option-like
// words, newlines, NUL and other control characters, unicode, very long values. Each value is either refused with
// an InputError that names that input (exit 2), or accepted; what is accepted reaches the commands we build only as
// data: the builder's job parameters, read back by a real shell, are exactly the values; our mmdebstrap hooks' text
// is the same whatever the inputs.
const project = mkdtempSync(join(tmpdir(), 'dvc-fuzz-test-'));
writeFileSync(join(project, 'goss.yaml'), 'file: {}\n');
mkdirSync(join(project, 'debian', 'tests'), { recursive: true });
writeFileSync(join(project, 'debian', 'tests', 'control'), 'Tests: t\n');
afterAll(() => rmSync(project, { recursive: true, force: true }));
const ctx = parseContext(project);

const TOKENS = [
  '$(id)',
  '`id`',
  ';reboot',
  '|| true',
  '&&',
  '>/tmp/x',
  '\n',
  '\r\n',
  '\0',
  '\x07',
  '\x1b[31m',
  '\t',
  ' ',
  '--help',
  '-x',
  '--output-dir=/',
  '../',
  '/',
  '~',
  '*',
  '?',
  '[z-a]',
  '{a,b}',
  "'",
  '"',
  '\\',
  '%zz',
  '\u202e',
  'é',
  '🙂',
  '\ud800',
  'file:///etc/passwd',
  'http://',
  'trixie',
  'true',
  '3G',
  '10m',
  '0',
  '-1',
  '1e9',
  'a',
];

/** Hostile strings: arbitrary code units, joined tokens, and long repetitions. */
const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 8 }).map((a) => a.join('')),
  fc.tuple(fc.constantFrom(...TOKENS), fc.integer({ min: 100, max: 5000 })).map(([t, n]) => t.repeat(n)),
);

/** A plausible value of the input with hostile text after it: what gets past a first look at the value. */
const PLAUSIBLE: Record<string, string> = {
  hostname: 'vm',
  mirror: 'http://mirror.example/debian',
  'image-size': '3G',
  release: 'trixie',
  packages: 'vim',
  password: 'pw',
  'check-valid-until': 'false',
};
const plausible = (name: string): fc.Arbitrary<string> =>
  fc.oneof(
    hostile,
    hostile.map((h) => `${PLAUSIBLE[name] ?? ''}${h}`),
    fc.constant(PLAUSIBLE[name] ?? ''),
  );

/** Inputs whose value another input's check depends on: a refusal may name that one (gossfile in working-directory). */
const DEPENDENT: Record<string, string[]> = { 'working-directory': ['gossfile'] };

function parseWith(name: string, value: string): Config | InputError {
  try {
    return parseConfig(cliInputs([`--${name}=${value}`]), ctx);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw new Error(`input ${name}=${JSON.stringify(value.slice(0, 200))}: not an InputError: ${String(e)}`, { cause: e });
  }
}

describe('every input, fuzzed', () => {
  it.each([...INPUT_NAMES])('%s: refused naming the input, or accepted', (name) => {
    fc.assert(
      fc.property(hostile, (value) => {
        const r = parseWith(name, value);
        if (r instanceof InputError) {
          expect(
            [name, ...(DEPENDENT[name] ?? [])],
            `${name}=${JSON.stringify(value.slice(0, 200))}: ${r.message.slice(0, 300)}`,
          ).toContain(r.input);
          // The message names the input; a value with a line break or control characters is shown escaped.
          expect(r.message).toContain(`'${r.input}'`);
          expect(r.message).not.toMatch(/[\0\n\r]/);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("the builder's job parameters, read by a real shell, are exactly the accepted values", () => {
    const names = ['hostname', 'mirror', 'image-size', 'release'] as const;
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...names).chain((name) => fc.tuple(fc.constant(name), plausible(name))),
        ([name, value]) => {
          const r = parseWith(name, value);
          if (r instanceof InputError) return;
          accepted++;
          const params = jobParams(r, 'http://10.0.2.2:3128/');
          const file = join(project, 'params');
          writeFileSync(file, params);
          const vars = ['INSTALLER', 'RELEASE', 'MIRROR', 'HOSTNAME', 'VMSIZE', 'PROXY'];
          const out = execFileSync('sh', ['-c', `. "$1" && printf '%s\\0' ${vars.map((v) => `"$${v}"`).join(' ')}`, 'sh', file], {
            encoding: 'utf8',
          });
          expect(out.split('\0').slice(0, -1)).toEqual([
            r.installer,
            r.release,
            r.mirror,
            r.hostname,
            r.imageSize,
            'http://10.0.2.2:3128/',
          ]);
        },
      ),
      { numRuns: 200 },
    );
    // The round trip was exercised, not only refusals.
    expect(accepted).toBeGreaterThan(20);
  });

  it('our mmdebstrap hooks are the same text whatever the inputs', () => {
    const hooks = (c: Config): string[] =>
      mmdebstrapArgv(c, { files: '/w/files', debs: [], target: '/w/root.tar', bootDir: '/w/boot' }).filter((w) =>
        /^--(customize|essential|setup|extract)-hook=/.test(w),
      );
    const base = hooks(parseConfig(cliInputs(['--installer=mmdebstrap']), ctx));
    const names = ['hostname', 'packages', 'mirror', 'release', 'image-size', 'password', 'check-valid-until'] as const;
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...names).chain((name) => fc.tuple(fc.constant(name), plausible(name))),
        ([name, value]) => {
          let c: Config;
          try {
            c = parseConfig(cliInputs(['--installer=mmdebstrap', `--${name}=${value}`]), ctx);
          } catch (e) {
            if (e instanceof InputError) return;
            throw e;
          }
          accepted++;
          const h = hooks(c);
          // check-valid-until: false adds one upload hook of a fixed file; nothing else may differ.
          expect(h.filter((w) => !w.includes('valid-until.conf'))).toEqual(base);
        },
      ),
      { numRuns: 300 },
    );
    expect(accepted).toBeGreaterThan(30);
  });
});
