import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOGIN_PROMPT, PASSWORD_OR_LOGIN_PROMPT, PASSWORD_PROMPT, SHELL_PROMPT_OR_REFUSAL } from '../src/vm/session.js';

/*
 * validate logs in on the serial console by waiting for getty's, login's and the shell's prompts. Late kernel
 * messages can land on the prompt's line: in a CI run the guest answered validate's newline with
 * "debian login: [   16.792899] powernow_k8: Power state transitions not supported", and a prompt that had to end
 * its line was never seen (validate gave up after 60 s).
 */

const goodTrixie = readFileSync(join(import.meta.dirname, 'fixtures', 'console', 'good-trixie.log'), 'latin1');

describe('serial console prompts', () => {
  it('finds the login prompt at the end of the output', () => {
    const text = 'Debian GNU/Linux 13 debian ttyS0\r\n\r\ndebian login: ';
    const m = LOGIN_PROMPT.exec(text);
    expect(m?.index).toBe(text.indexOf('login: '));
  });

  it('finds the login prompt with a kernel message printed right behind it (real serial log)', () => {
    const m = LOGIN_PROMPT.exec(goodTrixie);
    expect(m).not.toBeNull();
    const end = m!.index + m![0].length;
    expect(goodTrixie.slice(m!.index - 7, end)).toBe('debian login: ');
    expect(goodTrixie.slice(end)).toMatch(/^\[ +\d+\.\d+\] powernow_k8:/);
  });

  it('does not take "Last login:" or prose for a prompt', () => {
    expect(LOGIN_PROMPT.exec('Last login: Sun Nov 29 04:57:01 UTC 2026 on ttyS0\r\n')).toBeNull();
    expect(LOGIN_PROMPT.exec('set the login: [brackets] aside\r\n')).toBeNull();
    expect(SHELL_PROMPT_OR_REFUSAL.exec('# a comment in the motd\r\n$PATH is set\r\n')).toBeNull();
  });

  it('tells a password prompt from a restarted getty, with or without a kernel message behind', () => {
    expect(PASSWORD_OR_LOGIN_PROMPT.exec('root\r\nPassword: ')?.[1]).toBe('Password');
    expect(PASSWORD_OR_LOGIN_PROMPT.exec('root\r\nPassword: [   18.100000] random: crng init done\r\n')?.[1]).toBe('Password');
    expect(PASSWORD_OR_LOGIN_PROMPT.exec('\r\ndebian login: ')?.[1]).toBe('login');
    expect(PASSWORD_PROMPT.exec('root\r\nPassword:')).not.toBeNull();
  });

  it('sees the root shell prompt or the refusal', () => {
    expect(SHELL_PROMPT_OR_REFUSAL.exec('\r\nroot@debian:~# ')?.[1]).toBe('# ');
    expect(SHELL_PROMPT_OR_REFUSAL.exec('\r\nroot@debian:~# [   19.5] e1000: eth0 NIC Link is Up\r\n')?.[1]).toBe('# ');
    expect(SHELL_PROMPT_OR_REFUSAL.exec('\r\nLogin incorrect\r\ndebian login: ')?.[1]).toBe('Login incorrect');
  });
});
