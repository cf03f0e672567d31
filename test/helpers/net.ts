import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A TCP port on `host` that was free a moment ago (for servers that must be told their port up front);
 * `0.0.0.0`: free on every address.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = http.createServer();
  s.listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
