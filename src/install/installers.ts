/**
 * The installers, one entry each: what config checks and where it runs. Their implementations are in
 * src/install/ and the install stage maps each name to one (src/stages/install.ts, RUN). A new installer:
 * an entry here, its module in src/install/, its line in RUN; a test keeps action.yml's `installer`
 * description naming every entry.
 */
import { InputError } from '../errors.js';

/** What the installers' own checks read (a part of Config: config.ts imports this module). */
export interface InstallerInputs {
  readonly installCommand: string;
  readonly installBuiltPackages: boolean;
}

export interface InstallerFacts {
  /** Runs in the throwaway builder VM, never on the runner: the image is made on the builder's scratch disk. */
  readonly inBuilder: boolean;
  /** install-built-packages: true installs the built .deb files into the image (else a built installer is used as such). */
  readonly installsBuiltPackages: boolean;
  /** Checks of the inputs only this installer reads; throws InputError naming the input. */
  check(inputs: InstallerInputs): void;
}

function noInstallCommand(inputs: InstallerInputs): void {
  if (inputs.installCommand) {
    throw new InputError('install-command', inputs.installCommand, 'empty unless installer is command');
  }
}

export const INSTALLERS = {
  'grml-debootstrap': { inBuilder: true, installsBuiltPackages: true, check: noInstallCommand },
  mmdebstrap: { inBuilder: false, installsBuiltPackages: true, check: noInstallCommand },
  command: {
    inBuilder: true,
    installsBuiltPackages: false,
    check(inputs: InstallerInputs): void {
      if (!inputs.installCommand) {
        throw new InputError('install-command', inputs.installCommand, 'a command line when installer is command');
      }
    },
  },
} as const satisfies Record<string, InstallerFacts>;

export type Installer = keyof typeof INSTALLERS;
export const INSTALLER_NAMES = Object.keys(INSTALLERS) as readonly Installer[];

/** The checks every installer shares, then its own. */
export function checkInstaller(installer: Installer, inputs: InstallerInputs): void {
  const facts: InstallerFacts = INSTALLERS[installer];
  if (inputs.installBuiltPackages && !facts.installsBuiltPackages) {
    const takers = INSTALLER_NAMES.filter((n) => INSTALLERS[n].installsBuiltPackages).join(', ');
    throw new InputError(
      'install-built-packages',
      'true',
      `false with installer ${installer} (built packages are installed into ${takers} images)`,
    );
  }
  facts.check(inputs);
}
