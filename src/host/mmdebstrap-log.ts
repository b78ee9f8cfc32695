/**
 * mmdebstrap's own phases ("I: installing remaining packages inside the chroot...") as progress lines, each
 * once: the install stage's mmdebstrap and the builder image's run for many minutes under emulation, and the log
 * should show where they are.
 */
export function mmdebstrapPhases(progress: (message: string) => void): (line: string) => void {
  let last = '';
  return (line) => {
    const phase = /^I: (\w[\w ]+?)(\.\.\.|:)/.exec(line)?.[1];
    if (phase && phase !== last && !/^(running|using|automatically)/.test(phase)) {
      last = phase;
      progress(`mmdebstrap: ${phase}`);
    }
  };
}
