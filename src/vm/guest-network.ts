/**
 * The network of the VMs we start (the builder VM, the first boot, the test VM): QEMU's user-mode network, walled
 * by default. `restrict=on` drops every connection the guest opens except to the one address forwarded into it
 * (`guestfwd`): the run's apt proxy, reached through a unix socket. The guest then cannot reach the runner's
 * loopback (10.0.2.2 in an open user-mode network), its other addresses, the cloud's metadata service or the
 * internet; DHCP still answers, DNS does not (the proxy resolves the mirror's name on the host).
 *
 * `vm-network: open` gives the test VM the open user-mode network instead, for goss `http` checks or autopkgtest
 * tests that need the internet; the builder VM and the first boot stay walled.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shellQuote } from '../host/shell.js';

/** Where the guest finds the apt proxy: an address of QEMU's virtual network that is no host's. */
export const GUEST_PROXY_ADDRESS = '10.0.2.100';
export const GUEST_PROXY_PORT = 3142;

/** The proxy URL the guest's apt is given. */
export const GUEST_PROXY_URL = `http://${GUEST_PROXY_ADDRESS}:${GUEST_PROXY_PORT}/`;

/** The bridge QEMU runs for each guest connection to the proxy (a file of its own). */
export const GUESTFWD_BRIDGE = readFileSync(new URL('./guestfwd-bridge.mjs', import.meta.url), 'utf8');

export interface GuestNetwork {
  /** true: the wall (only the proxy); false: QEMU's open user-mode network, with the proxy forwarded in as well. */
  restricted: boolean;
  /** The unix socket the run's apt proxy serves this VM on (AptProxy.serveSocket). */
  proxySocket: string;
  /** The bridge script (writeGuestfwdBridge). */
  bridge: string;
}

/** The network of a VM whose files live in `dir` (short: unix socket paths are limited to 107 bytes). */
export function guestNetwork(dir: string, restricted: boolean): GuestNetwork {
  const proxySocket = join(dir, 'apt-proxy.sock');
  if (Buffer.byteLength(proxySocket) > 107) {
    throw new Error(`the VM's directory is too long for a unix socket (107 bytes at most): ${proxySocket}`);
  }
  const bridge = join(dir, 'guestfwd-bridge.mjs');
  writeFileSync(bridge, GUESTFWD_BRIDGE, { mode: 0o644 });
  return { restricted, proxySocket, bridge };
}

/**
 * The `-netdev user` option of a VM. The guestfwd command is split into words by libslirp (g_shell_parse_argv, no
 * shell runs): each word is quoted; QEMU's option parser reads a doubled comma as one.
 */
export function userNetdev(id: string, net: GuestNetwork, node = process.execPath): string {
  const command = [node, net.bridge, net.proxySocket].map(shellQuote).join(' ');
  const forward = `tcp:${GUEST_PROXY_ADDRESS}:${GUEST_PROXY_PORT}-cmd:${command}`;
  return [`user`, `id=${id}`, ...(net.restricted ? ['restrict=on'] : []), `guestfwd=${forward}`]
    .map((part) => part.replaceAll(',', ',,'))
    .join(',');
}
