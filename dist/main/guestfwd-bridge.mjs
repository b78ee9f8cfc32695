/*
 * One guest connection to the run's apt proxy. QEMU's user-mode network (guestfwd=...-cmd:) starts this for each
 * TCP connection the guest opens to the proxy's address, with that connection on stdin and stdout (and stderr: so
 * nothing is ever written there). It joins the connection to the proxy's unix socket, given as the only argument,
 * and ends when either side does. When no proxy listens (between guest jobs), the guest's connection is closed.
 */
import { connect } from 'node:net';

const proxy = connect(process.argv[2]);
const quit = () => process.exit(0);
proxy.on('error', quit);
process.stdin.on('error', quit);
process.stdout.on('error', quit);
proxy.on('connect', () => {
  process.stdin.pipe(proxy);
  proxy.pipe(process.stdout);
});
proxy.on('close', quit);
