/**
 * A relayed pull without Docker (`node bench/run.js p2pRelay`, after `npm run build`): three processes on
 * loopback, the agents' own registry handler (bench/_relayChild.js): node 1 holds a 128 MiB blob (a file, read
 * as the agent reads containerd's content directory) and serves it on its registry port and its TLS-PSK data
 * port; node 2 holds nothing and relays it from node 1's data port (verified while streaming); the client is
 * this process. Interleaved runs of:
 *   - local: GET from node 1's registry port (what bench/p2p.js calls local);
 *   - data port: GET from node 1's data port, TLS-PSK, this process the client (node 1's TLS cost alone);
 *   - relayed: GET from node 2, which pulls from node 1's data port.
 * Each with the CPU time of every process (process.cpuUsage, user + system) per 128 MiB: on a machine shared by
 * several processes that is the steadier measure, and the busiest process bounds the throughput.
 * BENCH_RELAY_DIST=dir1,dir2 relays through one node 2 per build (each a dist/ directory), same node 1, same
 * runs, interleaved: a side-by-side comparison of two builds of the relay.
 */
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = join(ROOT, 'bench', '_relayChild.js');
const SIZE = 128 << 20;
const RUNS = Number(process.env.BENCH_RELAY_RUNS ?? 5);

const up = (args) =>
  new Promise((resolve, reject) => {
    const child = fork(CHILD, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (ports) => resolve({ child, ...ports }));
    child.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
const cpuOf = (child) =>
  new Promise((resolve) => {
    child.once('message', (m) => resolve((m.cpu.user + m.cpu.system) / 1000));
    child.send('cpu');
  });
const ownCpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

export async function run(report) {
  const { createDataClient, dataKeyOf } = await import(pathToFileURL(join(ROOT, 'dist', 'agent', 'dataPath.js')).href);
  const dir = mkdtempSync(join(tmpdir(), 'lo-relay-bench-'));
  const file = join(dir, 'blob');
  const h = createHash('sha256');
  const fd = openSync(file, 'w');
  for (let left = SIZE; left > 0; left -= 4 << 20) {
    const b = randomBytes(4 << 20);
    h.update(b);
    writeSync(fd, b);
  }
  closeSync(fd);
  const digest = `sha256:${h.digest('hex')}`;
  const path = `/v2/bench/blobs/${digest}`;
  const children = [];
  const client = createDataClient(dataKeyOf(Buffer.alloc(32, 7)));
  try {
    const node1 = await up(['node1', file, digest, join(ROOT, 'dist')]);
    children.push(node1.child);
    const builds = (process.env.BENCH_RELAY_DIST ?? join(ROOT, 'dist')).split(',');
    const relays = [];
    for (const d of builds) {
      const n = await up(['node2', `https://127.0.0.1:${node1.data}`, '', d]);
      children.push(n.child);
      relays.push({ name: builds.length > 1 ? `relayed (node 2 from ${d})` : 'relayed (node 2 from node 1)', ...n });
    }
    const get = (port) =>
      new Promise((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${port}${path}`, { agent: false }, (res) => {
            let n = 0;
            res.on('data', (c) => (n += c.length));
            res.on('end', () => (res.statusCode === 200 && n === SIZE ? resolve() : reject(new Error(`${res.statusCode}, ${n} bytes`))));
            res.on('error', reject);
          })
          .on('error', reject);
      });
    const overData = async () => {
      const r = await client.fetch(
        `https://127.0.0.1:${node1.data}`,
        { method: 'GET', path, headers: {} },
        5000,
        AbortSignal.timeout(60_000),
      );
      let n = 0;
      for await (const c of r.body) n += c.length;
      if (r.status !== 200 || n !== SIZE) throw new Error(`data port: ${r.status}, ${n} bytes`);
    };
    const kinds = [
      { name: 'local (node 1 registry port)', fn: () => get(node1.reg), relay: null },
      { name: 'data port (node 1, TLS-PSK, to this process)', fn: overData, relay: null },
      ...relays.map((r) => ({ name: r.name, fn: () => get(r.reg), relay: r.child })),
    ];
    for (const k of kinds) await k.fn(); // warm-up: JIT, connections
    const out = kinds.map(() => ({ ms: [], node1: [], node2: [], client: [] }));
    for (let i = 0; i < RUNS; i++) {
      for (const [j, k] of kinds.entries()) {
        const a = await cpuOf(node1.child);
        const b = k.relay ? await cpuOf(k.relay) : 0;
        const c = ownCpu();
        const t = performance.now();
        await k.fn();
        out[j].ms.push(performance.now() - t);
        out[j].client.push(ownCpu() - c);
        out[j].node1.push((await cpuOf(node1.child)) - a);
        out[j].node2.push(k.relay ? (await cpuOf(k.relay)) - b : 0);
      }
    }
    report.heading(`128 MiB blob, 3 processes on loopback, ${RUNS} interleaved runs (load ${loadavg()[0].toFixed(1)})`);
    const mib = (ms) => (SIZE / (1 << 20) / ms) * 1000;
    const results = kinds.map((k, j) => {
      const s = report.sample(k.name, out[j].ms);
      report.value(`  ${k.name}: throughput`, mib(s.median), 'MiB/s');
      const med = (xs) => report.median(xs);
      report.note(
        `  CPU per 128 MiB: node 1 ${med(out[j].node1).toFixed(0)} ms, node 2 ${med(out[j].node2).toFixed(0)} ms, client ${med(out[j].client).toFixed(0)} ms`,
      );
      return { s, node1: med(out[j].node1), node2: med(out[j].node2) };
    });
    for (const [j, r] of results.entries()) {
      if (j < 2) continue;
      report.ratio(`${kinds[j].name} / local throughput`, results[0].s, r.s);
      report.ratio(`node 1 CPU local / node 2 CPU ${kinds[j].name} (relayed / local if CPU-bound)`, results[0].node1, r.node2);
    }
    report.ratio('data port / local throughput (node 1 serving over TLS-PSK)', results[0].s, results[1].s);
  } finally {
    client.close();
    for (const c of children) c.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
