import { type Stage, underKvm } from '../context.js';
import { StageError } from '../errors.js';
import { gossInGuest } from '../goss/in-guest.js';

export const validate: Stage<'validate'> = {
  name: 'validate',
  usesGuest: true,
  skipReason: (config) => (!config.install ? 'install: false' : config.validate ? undefined : 'validate: false'),
  async run(ctx) {
    const { config, results, paths } = ctx;
    const booted = results.boot;
    if (!booted) throw new StageError('validate', 'there is no booted VM to validate');
    return gossInGuest(ctx, 'validate', config, {
      vm: booted.vm,
      kvm: underKvm(results),
      shareDir: booted.shareDir,
      gossfile: config.gossfile,
      reportDir: paths.goss,
      diagnosticsDir: paths.diagnostics,
      suiteName: `goss ${config.release}`,
    });
  },
};
