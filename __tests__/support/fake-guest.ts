import { execFileSync } from 'node:child_process';
import type { GuestVm } from '../../src/vm/guest.js';
import { GUEST_SHARE } from '../../src/vm/session.js';

/*
 * A console that behaves like a Debian guest's serial console: getty, login, a root shell that runs what is
 * typed with /bin/sh on the host, the share seen at GUEST_SHARE (here: the host directory, by rewriting the
 * path). For the session's own protocol and the pipeline's use of it; the real guest is in the integration tests.
 */
export interface FakeOptions {
  password: string;
  /** What the guest prints besides the command's own output, e.g. a forged end marker. */
  noise?: string;
  mount?: 'ok' | 'fail';
  /** Deliver each end marker in two pieces, its last digit and line end 20 ms later, as a serial line may. */
  trickle?: boolean;
}

export function fakeGuest(share: string, opts: FakeOptions): { vm: GuestVm; typed: string[]; stopped: () => boolean } {
  let out = 'Debian GNU/Linux 13 debian ttyS0\r\n\r\ndebian login: ';
  const typed: string[] = [];
  let state: 'login' | 'password' | 'shell' = 'login';
  let stopped = false;
  const vm = {
    consumed: () => out.length,
    type(text: string) {
      typed.push(text);
      const line = text.replace(/\n$/, '');
      out += line + '\r\n'; // the console echoes what is typed
      if (state === 'login' && line === '') {
        out += '\r\ndebian login: '; // getty asks again
      } else if (state === 'login') {
        state = 'password';
        out += 'Password: ';
      } else if (state === 'password') {
        if (line === opts.password) {
          state = 'shell';
          out += 'root@debian:~# ';
        } else {
          state = 'login';
          out += '\r\nLogin incorrect\r\ndebian login: ';
        }
      } else if (/^mkdir -p .* && mount -t 9p/.test(line)) {
        const status = opts.mount === 'fail' ? 32 : 0;
        out += `${opts.noise ?? ''}${line.replace(/^.*; printf '(DVC-%s-%s:%d)\\n' END (\S+) \$\?$/, (_m, _f, id: string) => `DVC-END-${id}:${status}`)}\r\nroot@debian:~# `;
      } else if (line !== 'systemctl poweroff') {
        const sh = line.replaceAll(GUEST_SHARE, share).replace(/; printf .*$/, '');
        const status = (() => {
          try {
            execFileSync('sh', ['-c', sh.replace(/^sh (\S+)/, (_m, f: string) => `sed 's#${GUEST_SHARE}#${share}#' ${f} | sh`)]);
            return 0;
          } catch (e) {
            return (e as { status: number }).status;
          }
        })();
        const id = /END (\S+) \$\?$/.exec(line)?.[1];
        const end = `${opts.noise ?? ''}DVC-END-${id}:${status}\r\nroot@debian:~# `;
        if (!opts.trickle) out += end;
        else {
          const cut = end.indexOf('\r\n') - 1;
          out += end.slice(0, cut);
          setTimeout(() => (out += end.slice(cut)), 20);
        }
      }
    },
    async expect(pattern: RegExp, from: number) {
      // Like GuestVm.expect: looks again as more of the console arrives (here: for up to a second).
      for (let tries = 0; ; tries++) {
        const m = pattern.exec(out.slice(from));
        if (m) return { match: m, end: from + m.index + m[0].length };
        if (tries === 100) throw new Error(`no ${String(pattern)} on the console`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async shutdown() {
      stopped = true;
      return 0;
    },
  };
  return { vm: vm as unknown as GuestVm, typed, stopped: () => stopped };
}
