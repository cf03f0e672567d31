/**
 * A child process of bench/p2pRelay.js: one agent's registry handler on loopback, content from one file.
 *   node1 <file> <digest>:          the file's blob as local content; registry port and data port (TLS-PSK)
 *   node2 <data base> <dist dir>:   no local content; its router's only provider is node1's data port
 * Sends { reg, data? } (ports) when listening; answers 'cpu' with process.cpuUsage().
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [role, a, b, distDir] = process.argv.slice(2);
const dist = (p) => import(pathToFileURL(join(distDir, p)).href);
const { createDataClient, dataKeyOf, startDataServer } = await dist('agent/dataPath.js');
const { createRegistryHandler, startRegistryServer } = await dist('agent/registry.js');
const { createMetrics } = await dist('agent/metrics.js');
const key = dataKeyOf(Buffer.alloc(32, 7));

const source = (file, digest) => ({
  resolveTag: async () => null,
  stat: async (d) => (file && d === digest ? { size: (await stat(file)).size } : null),
  // As ContainerdSource reads the content directory: 256 KiB reads.
  read: async (_d, start, end) => createReadStream(file, { start, end, highWaterMark: 256 * 1024 }),
  listDigests: async () => [],
  listTags: async () => [],
  watch: () => () => {},
  close: async () => {},
});

const common = { metrics: createMetrics(), resolveTimeoutMs: 500, resolveLatest: false, port: 0, host: '127.0.0.1' };
if (role === 'node1') {
  const opts = { ...common, source: source(a, b), router: null };
  const handler = createRegistryHandler(opts);
  const reg = await startRegistryServer({ ...opts, handler });
  const data = await startDataServer({ host: '127.0.0.1', port: 0, key, registry: handler });
  process.send({ reg: reg.address().port, data: data.address().port });
} else {
  const client = createDataClient(key);
  const router = {
    async *resolve() {
      yield { id: 'node1' };
    },
    fetch: (_peer, req, timeoutMs, signal) => client.fetch(a, req, timeoutMs, signal),
    advertise: async () => ({ ok: 0, failed: 0 }),
    peerCount: () => 1,
    addresses: () => [],
  };
  const reg = await startRegistryServer({ ...common, source: source(null, null), router });
  process.send({ reg: reg.address().port });
}
process.on('message', (m) => m === 'cpu' && process.send({ cpu: process.cpuUsage() }));
process.on('disconnect', () => process.exit(0));
