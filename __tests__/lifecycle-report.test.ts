import { describe, expect, it } from 'vitest';
import { RUN_IN_GUEST } from '../src/stages/lifecycle.js';
import { GUEST_APT_PROXY_CONF } from '../src/vm/guest-job.js';
import {
  lifecycleProblems,
  lifecycleToJUnit,
  lifecycleToMarkdown,
  parseLines,
  parseSteps,
  type LifecycleReport,
} from '../src/lifecycle/report.js';

const clean: LifecycleReport = {
  steps: parseSteps(
    "install-previous\t0\tinstall the release's version: hello=2.10-3\nupgrade\t0\tupgrade to the built packages: hello\nremove\t0\tremove: hello\npurge\t0\tpurge, with what they pulled in: hello\n",
  ),
  leftovers: [],
  missing: [],
  scriptErrors: [],
};

describe('the life cycle report', () => {
  it('reads the steps the guest wrote, and nothing that is not a step line', () => {
    expect(parseSteps('install\t0\tinstall it\ngarbage\n\tx\t\nRM -rf\t1\tx\npurge\t100\tpurge it\n')).toEqual([
      { name: 'install', exitCode: 0, what: 'install it' },
      { name: 'purge', exitCode: 100, what: 'purge it' },
    ]);
    expect(parseLines('/var/lib/x\n\n/var/lib/x/state\n')).toEqual(['/var/lib/x', '/var/lib/x/state']);
  });

  it('a clean life cycle has no problems; one JUnit case per step and per file system check', () => {
    expect(lifecycleProblems(clean)).toEqual([]);
    const xml = lifecycleToJUnit(clean, 'lifecycle hello 2.10 on trixie', 'hello');
    expect(xml).toContain('<testsuite name="lifecycle hello 2.10 on trixie" tests="6" failures="0" errors="0" skipped="0">');
    expect(xml).toContain('<testcase name="nothing left behind after the purge" classname="lifecycle.hello"/>');
    expect(lifecycleToMarkdown(clean, 'lifecycle hello').split('\n')[0]).toBe('### lifecycle hello: ✅ passed');
  });

  it('names each failed step, script error, path left behind and path gone', () => {
    const bad: LifecycleReport = {
      steps: parseSteps('install\t0\tinstall\nremove\t0\tremove\npurge\t1\tpurge\n'),
      leftovers: ['/var/lib/dvc-dep8', '/var/lib/dvc-dep8/state'],
      missing: ['/etc/motd'],
      scriptErrors: ['purge: dpkg: error processing package dvc-dep8 (--purge):'],
    };
    expect(lifecycleProblems(bad)).toEqual([
      'purge exited with status 1: purge',
      'purge: dpkg: error processing package dvc-dep8 (--purge):',
      '2 path(s) left behind after the purge, owned by no package',
      '1 path(s) of the system before the install are gone after the purge',
    ]);
    const xml = lifecycleToJUnit(bad, 's', 'dvc-dep8');
    expect(xml).toContain('tests="5" failures="3"');
    expect(xml).toContain('<failure message="2 path(s) left behind">/var/lib/dvc-dep8\n/var/lib/dvc-dep8/state</failure>');
    expect(xml).toContain('<failure message="exit status 1">purge: dpkg: error processing package dvc-dep8 (--purge):</failure>');
    const md = lifecycleToMarkdown(bad, 'lifecycle dvc-dep8');
    expect(md).toContain('| purge | ❌ 1 | purge |');
    expect(md).toContain('<details open><summary>left behind after the purge, owned by no package (2)</summary>');
  });

  it('a path the guest named to end the code block cannot', () => {
    const md = lifecycleToMarkdown({ ...clean, leftovers: ['/srv/```', '/srv/x\u001b[31m'] }, 'x');
    expect(md).toContain('/srv/???\n/srv/x?[31m\n```');
    expect(md.match(/```/g)).toHaveLength(2);
  });

  it('lists at most 50 paths in the summary', () => {
    const many = { ...clean, leftovers: Array.from({ length: 60 }, (_, i) => `/srv/f${i}`) };
    const md = lifecycleToMarkdown(many, 'x');
    expect(md).toContain('/srv/f49');
    expect(md).not.toContain('/srv/f50\n');
    expect(md).toContain('… 10 more in lifecycle/');
  });
});

describe('the life cycle script', () => {
  it("leaves the run's apt proxy configuration (written by runGuestJob) out of its path lists", () => {
    expect(RUN_IN_GUEST).toContain(`-o -path ${GUEST_APT_PROXY_CONF} `);
  });
});
