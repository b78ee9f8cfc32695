import { join } from 'node:path';

/** The output directory contract; README documents these names, keep them stable. */
export interface OutputPaths {
  root: string;
  resultJson: string;
  summaryMd: string;
  logs: string;
  lint: string;
  packages: string;
  image: string;
  imageFile: string;
  serialLog: string;
  goss: string;
  diagnostics: string;
  /** autopkgtest's output directory (the files of it the guest handed back) and its reports. */
  autopkgtest: string;
  /** The lifecycle stage's steps, path lists and reports. */
  lifecycle: string;
  /** The upgrade stage's apt output, package lists, goss reports and diagnostics after the upgrade. */
  upgrade: string;
  /** Scratch space inside the output dir, never published. */
  work: string;
}

export function outputPaths(root: string): OutputPaths {
  return {
    root,
    resultJson: join(root, 'result.json'),
    summaryMd: join(root, 'summary.md'),
    logs: join(root, 'logs'),
    lint: join(root, 'lint'),
    packages: join(root, 'packages'),
    image: join(root, 'image'),
    imageFile: join(root, 'image', 'qemu.img'),
    serialLog: join(root, 'serial.log'),
    goss: join(root, 'goss'),
    diagnostics: join(root, 'diagnostics'),
    autopkgtest: join(root, 'autopkgtest'),
    lifecycle: join(root, 'lifecycle'),
    upgrade: join(root, 'upgrade'),
    work: join(root, '.work'),
  };
}
