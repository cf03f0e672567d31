/**
 * Agent-to-agent transport (`node bench/run.js p2pTransport`, after `npm run build`): lo's `/lo/oci/1.0.0`
 * stream (libp2p: pnet with the swarm key, noise, yamux; the agents' real code path, Libp2pRouter.serve and
 * fetch) against Node's mutual TLS (a lo CA, RSA, both sides verified), the alternative issue 13 names, and
 * the agents' TLS-PSK data path (dataPath.ts: HTTP/1.1 keep-alive, TLS 1.3 with an external PSK, key derived from
 * the swarm key; what the relay uses since issue 15). Two endpoints in this process on loopback, interleaved runs:
 *   - bulk: a 128 MiB body (what bounds relayed layer throughput);
 *   - small: a HEAD-sized exchange (the stream on the warm libp2p connection; mTLS on a new connection, which
 *     is what a relay without a connection pool would pay; the data path on its warm keep-alive connection).
 * No Docker; both ends share the process's CPU, so absolute numbers are lower than between two nodes.
 */
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const SIZE = 128 << 20;
const CHUNK = Buffer.alloc(64 << 10, 7);

function* body(method) {
  if (method === 'GET') for (let i = 0; i < SIZE / CHUNK.length; i++) yield CHUNK;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function run(report) {
  const { Libp2pRouter } = await dist('agent/libp2pRouter.js');
  const { generateSwarmKey, parseSwarmKey } = await dist('agent/swarmKey.js');
  const { createDataClient, dataKeyOf, startDataServer } = await dist('agent/dataPath.js');
  const { createCa, generateRsaKey, randomSerial, signCertificate } = await dist('apply/tls/ca.js');
  const forge = (await import('node-forge')).default;

  const psk = parseSwarmKey(generateSwarmKey());
  const server = await Libp2pRouter.start({ port: 0, psk, bootstrap: [], host: '127.0.0.1' });
  await server.serve(async (req) => ({ status: 200, headers: {}, body: Readable.from(body(req.method)) }));
  const addr = server.addresses().find((a) => a.includes('/tcp/'));
  const id = addr.split('/p2p/')[1];
  const client = await Libp2pRouter.start({ port: 0, psk, bootstrap: [addr], host: '127.0.0.1' });
  // The agent's data port hands a pull to its registry handler in process: here a handler writing the body.
  const dataServer = await startDataServer({
    host: '127.0.0.1',
    port: 0,
    key: dataKeyOf(psk),
    registry: (req, res) => {
      res.writeHead(200, { 'content-length': req.method === 'GET' ? SIZE : 0 });
      Readable.from(body(req.method)).pipe(res);
    },
  });
  const dataClient = createDataClient(dataKeyOf(psk));
  const dataBase = `https://127.0.0.1:${dataServer.address().port}`;

  // A lo CA and one lo leaf (10.x name, inside the CA's constraints) that both sides present: mutual, the
  // server requires and verifies the client's certificate. Host names are not checked (peers by IP).
  const now = new Date();
  const ca = await createCa({ now, identity: 'bench@lo' });
  const leafKey = await generateRsaKey(2048);
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = forge.pki.setRsaPublicKey(leafKey.key.n, leafKey.key.e);
  leaf.serialNumber = randomSerial();
  leaf.validity.notBefore = now;
  leaf.validity.notAfter = new Date(now.getTime() + 86_400_000);
  leaf.setSubject([{ name: 'commonName', value: 'lo-p2p-bench' }]);
  leaf.setIssuer(ca.cert.subject.attributes);
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '10.170.0.2' }] },
  ]);
  signCertificate(leaf, ca.key);
  const creds = { key: leafKey.keyPem, cert: forge.pki.certificateToPem(leaf), ca: ca.certPem };
  const tlsServer = tls.createServer({ ...creds, requestCert: true, rejectUnauthorized: true }, (s) => {
    s.once('data', (m) => {
      const chunks = body(String(m));
      const write = () => {
        for (let n = chunks.next(); !n.done; n = chunks.next()) if (!s.write(n.value)) return s.once('drain', write);
        s.end();
      };
      write();
    });
  });
  await new Promise((r) => tlsServer.listen(0, '127.0.0.1', r));
  const overTls = (method) =>
    new Promise((resolve, reject) => {
      let n = 0;
      const c = tls.connect({ ...creds, port: tlsServer.address().port, host: '127.0.0.1', checkServerIdentity: () => undefined }, () =>
        c.write(method),
      );
      c.on('data', (d) => (n += d.length));
      c.on('end', () => (method === 'GET' && n !== SIZE ? reject(new Error(`mTLS body: ${n} of ${SIZE} bytes`)) : resolve(n)));
      c.on('error', reject);
    });
  const overStream = async (method) => {
    const r = await client.fetch(
      { id },
      { method, path: `/v2/a/blobs/sha256:${'0'.repeat(64)}`, headers: {} },
      5000,
      AbortSignal.timeout(60_000),
    );
    let n = 0;
    for await (const c of r.body) n += c.length;
    if (method === 'GET' && n !== SIZE) throw new Error(`stream body: ${n} of ${SIZE} bytes`);
    return n;
  };
  const overData = async (method) => {
    const r = await dataClient.fetch(
      dataBase,
      { method, path: `/v2/a/blobs/sha256:${'0'.repeat(64)}`, headers: {} },
      5000,
      AbortSignal.timeout(60_000),
    );
    let n = 0;
    for await (const c of r.body) n += c.length;
    if (method === 'GET' && n !== SIZE) throw new Error(`data path body: ${n} of ${SIZE} bytes`);
    return n;
  };
  try {
    for (let i = 0; i < 50 && client.peerCount() === 0; i++) await new Promise((r) => setTimeout(r, 100));
    if (client.peerCount() === 0) throw new Error('the two libp2p endpoints did not connect');
    await overStream('GET');
    await overTls('GET');
    await overData('GET');
    const bulk = { stream: [], tls: [], data: [] };
    for (let i = 0; i < 5; i++) {
      bulk.stream.push(await time(() => overStream('GET')));
      bulk.tls.push(await time(() => overTls('GET')));
      bulk.data.push(await time(() => overData('GET')));
    }
    const small = { stream: [], tls: [], data: [] };
    for (let i = 0; i < 40; i++) {
      small.stream.push(await time(() => overStream('HEAD')));
      small.tls.push(await time(() => overTls('HEAD')));
      small.data.push(await time(() => overData('HEAD')));
    }
    report.heading('128 MiB body, both ends in this process (5 interleaved runs)');
    const mib = (ms) => (SIZE / (1 << 20) / ms) * 1000;
    report.value('/lo/oci/1.0.0 stream (pnet + noise + yamux)', mib(median(bulk.stream)), 'MiB/s');
    report.value('mutual TLS (Node, lo CA RSA key)', mib(median(bulk.tls)), 'MiB/s');
    report.value('TLS-PSK data path (HTTP/1.1 keep-alive, TLS 1.3 PSK + X25519)', mib(median(bulk.data)), 'MiB/s');
    report.ratio('stream / mTLS bulk throughput (higher is better)', median(bulk.tls), median(bulk.stream));
    report.ratio('data path / mTLS bulk throughput (higher is better)', median(bulk.tls), median(bulk.data));
    report.ratio('data path / stream bulk throughput (higher is better)', median(bulk.stream), median(bulk.data));
    report.heading('small exchange (40 interleaved)');
    report.value('stream on the warm connection p50', median(small.stream), 'ms');
    report.value('mTLS with a new connection p50', median(small.tls), 'ms');
    report.value('data path on the warm keep-alive connection p50', median(small.data), 'ms');
  } finally {
    await client.stop();
    await server.stop();
    tlsServer.close();
    dataClient.close();
    dataServer.close();
  }
}
