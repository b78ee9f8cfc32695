import { DEFAULT_BOOT_TIMEOUT } from '../config.js';
import type { Stage } from '../context.js';
import { StageError } from '../errors.js';
import { scratchDir } from '../host/scratch.js';
import { bootAndWatch } from '../vm/boot-watch.js';
import { prepareTestVm } from '../vm/test-vm.js';

export const boot: Stage<'boot'> = {
  name: 'boot',
  skipReason: (config) => (config.install ? undefined : 'install: false'),
  async run(ctx) {
    const { config, results, paths } = ctx;
    const installed = results.install;
    if (!installed) throw new StageError('boot', 'there is no installed image to boot');
    const accel = results.accel?.accel ?? 'tcg';
    const timeout = config.bootTimeout ?? DEFAULT_BOOT_TIMEOUT[accel];
    const run = scratchDir(ctx, 'vm');
    // The VM writes to an overlay: the published image stays exactly what the installer produced.
    const { spec, shareDir } = await prepareTestVm(ctx, 'boot', config, {
      accel,
      image: installed.image,
      boot: installed.boot,
      dir: run.path,
      serialLog: paths.serialLog,
      overlay: true,
    }).catch((e: unknown) => {
      run.release();
      throw e;
    });
    const booted = await bootAndWatch(ctx, 'boot', spec, {
      timeoutSeconds: timeout,
      onStopped: () => run.release(),
      diagnosticsDir: ctx.paths.diagnostics,
      screenshot: 'screen.png',
      what: 'boot',
    });
    // The VM keeps running for validate; whoever shuts it down also removes its scratch dir.
    return {
      summary: `login prompt after ${booted.seconds}s (${accel})`,
      vm: booted.vm,
      bootSeconds: booted.seconds,
      shareDir,
      milestones: booted.milestones,
    };
  },
};
