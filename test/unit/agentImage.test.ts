import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, cp, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDirs } from '../support/tempDirs.js';
import { AGENT_BUNDLE_DIR, agentImageTag, staleAgentImages } from '../../src/apply/agentImage.js';
import { generateSwarmKey } from '../../src/agent/swarmKey.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const BASE = { ref: 'lo-test/node', id: 'sha256:1111' };

const tempDir = tempDirs();

/** A package root as a checkout or an install has it: package.json, the CLI bundle, the agent bundle. */
async function packageRoot(version: string, cli: string): Promise<string> {
  const root = await tempDir('lo-agent-root-');
  await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'lo', version }));
  await cp(join(REPO, AGENT_BUNDLE_DIR), join(root, AGENT_BUNDLE_DIR), { recursive: true });
  await writeFile(join(root, 'dist', 'bundle', 'lo.cjs'), cli);
  return root;
}

interface BundleScript {
  agentBundle(outDir: string, srcDir: string): Promise<unknown>;
}

beforeAll(async () => {
  if (!existsSync(join(REPO, AGENT_BUNDLE_DIR, 'agent.mjs'))) await run('npm', ['run', 'build'], { cwd: REPO, maxBuffer: 16 << 20 });
}, 180_000);

describe('the agent image tag: keyed by what the image holds, not by lo', () => {
  it('two package roots differing only in version and CLI code have the same tag', async () => {
    const a = agentImageTag(await packageRoot('0.1.0', 'cli one'), BASE);
    const b = agentImageTag(await packageRoot('9.9.9', 'cli two, changed'), BASE);
    expect(a.image).toMatch(/^lo-p2p-agent:[0-9a-f]{16}$/);
    expect(b.image).toBe(a.image);
    // exactly the agent bundle and its protos, nothing of the CLI or package.json
    expect(a.files).toEqual(['agent.mjs', 'proto/content.proto', 'proto/events.proto', 'proto/images.proto']);
  });

  it('a changed agent file, proto, base reference or base ID gives a new tag', async () => {
    const root = await packageRoot('0.1.0', 'cli');
    const before = agentImageTag(root, BASE).image;
    expect(agentImageTag(root, { ...BASE, id: 'sha256:2222' }).image).not.toBe(before);
    expect(agentImageTag(root, { ...BASE, ref: 'node:20-bookworm-slim' }).image).not.toBe(before);
    await appendFile(join(root, AGENT_BUNDLE_DIR, 'proto', 'events.proto'), '\n');
    const proto = agentImageTag(root, BASE).image;
    expect(proto).not.toBe(before);
    await appendFile(join(root, AGENT_BUNDLE_DIR, 'agent.mjs'), '\n');
    expect(agentImageTag(root, BASE).image).not.toBe(proto);
  });

  it('a change in an agent source rebuilds to a new tag; the same sources build the same bytes', async () => {
    const script = (await import(pathToFileURL(join(REPO, 'scripts', 'bundle.js')).href)) as BundleScript;
    const copy = await tempDir('lo-agent-src-');
    await cp(join(REPO, 'src'), join(copy, 'src'), { recursive: true });
    await symlink(join(REPO, 'node_modules'), join(copy, 'node_modules'));
    const build = async (): Promise<string> => {
      const out = await tempDir('lo-agent-out-');
      await script.agentBundle(join(out, AGENT_BUNDLE_DIR), join(copy, 'src'));
      return agentImageTag(out, BASE).image;
    };
    const first = await build();
    expect(await build()).toBe(first);
    const runTs = join(copy, 'src', 'agent', 'run.ts');
    await writeFile(runTs, (await readFile(runTs, 'utf8')).replace('lo p2p agent: registry on', 'lo p2p agent (changed): registry on'));
    expect(await build()).not.toBe(first);
  }, 60_000);

  it('a package without the agent bundle is told to build', async () => {
    const root = await tempDir('lo-agent-none-');
    expect(() => agentImageTag(root, BASE)).toThrow(/agent bundle .* is missing/);
  });
});

describe('the agent bundle runs alone (what the image holds, no node_modules)', () => {
  it('parses `p2p agent` with the option table, rejects bad input with exit 2, and serves /v2/', async () => {
    const dir = await tempDir('lo-agent-alone-');
    await cp(join(REPO, AGENT_BUNDLE_DIR), dir, { recursive: true });
    const entry = join(dir, 'agent.mjs');
    const help = await run(process.execPath, [entry, 'p2p', 'agent', '--help']);
    expect(help.stdout).toContain('Usage: lo p2p agent [options]');
    expect(help.stdout).toContain('--resolve-timeout-ms <ms>');
    const bad = await run(process.execPath, [entry, 'p2p', 'agent', '--port', 'x']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("option '--port <port>' argument 'x' is invalid");
    const key = join(dir, 'swarm.key');
    await writeFile(key, generateSwarmKey(), { mode: 0o600 });
    const args = ['p2p', 'agent', '--key', key, '--port', '0', '--router-port', '0', '--metrics-port', '0', '--data-port', '0'];
    const child = spawn(process.execPath, [entry, ...args, '--public-host', '127.0.0.1', '--containerd', join(dir, 'no.sock')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      let err = '';
      const url = await new Promise<string>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`no start line: ${err}`)), 20_000);
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /registry on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
          if (m) {
            clearTimeout(t);
            res(m[1]!);
          }
        });
        child.once('exit', (code) => rej(new Error(`exited ${code}: ${err}`)));
      });
      const r = await fetch(`${url}/v2/`);
      expect(r.status).toBe(200);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});

describe('which agent images a build or a clean removes', () => {
  const img = (id: string, created: number, tag = `lo-p2p-agent:${id}`) => ({ id, tags: [tag], created });
  const images = [img('a', 10), img('b', 50), img('c', 40), img('d', 30), img('e', 20)];
  it('never one a container uses, never the one kept, and the newest unused stay', () => {
    const names = (l: Array<{ id: string }>) => l.map((i) => i.id);
    expect(names(staleAgentImages(images, new Set(), { keepUnused: 3 }))).toEqual(['e', 'a']);
    expect(names(staleAgentImages(images, new Set(['a', 'e']), { keepUnused: 3 }))).toEqual([]);
    expect(names(staleAgentImages(images, new Set(['b']), { keepUnused: 1, keep: ['lo-p2p-agent:c'] }))).toEqual(['e', 'a']);
    expect(names(staleAgentImages(images, new Set(['d']), { keepUnused: 0 }))).toEqual(['b', 'c', 'e', 'a']);
  });
});

describe('node:crypto stand-ins in the agent bundle for the WebAssembly modules noise imports', () => {
  interface Aead {
    seal(k: Uint8Array, n: Uint8Array, p: Uint8Array, ad?: Uint8Array, dst?: Uint8Array): Uint8Array;
    open(k: Uint8Array, n: Uint8Array, s: Uint8Array, ad?: Uint8Array, dst?: Uint8Array): Uint8Array | null;
  }
  type AeadModule = { newInstance(): unknown; ChaCha20Poly1305: new (ctx: unknown) => Aead };
  type Sha = { digest(d: Uint8Array): Uint8Array };
  const load = async <T>(p: string): Promise<T> => (await import(p)) as T;

  it('seal, open (in place too) and digest give the same bytes as @chainsafe/as-chacha20poly1305 and as-sha256', async () => {
    const real = await load<AeadModule>('@chainsafe/as-chacha20poly1305');
    const shim = await load<AeadModule>(pathToFileURL(join(REPO, 'scripts', 'shims', 'as-chacha20poly1305.js')).href);
    const a = new real.ChaCha20Poly1305(real.newInstance());
    const b = new shim.ChaCha20Poly1305(shim.newInstance());
    const { randomBytes } = await import('node:crypto');
    for (const size of [0, 1, 63, 64, 1199, 4096]) {
      const [k, n, p] = [randomBytes(32), randomBytes(12), randomBytes(size)];
      const ad = size % 2 ? randomBytes(32) : new Uint8Array(0);
      const sealed = a.seal(k, n, p, ad);
      expect(Buffer.from(b.seal(k, n, p, ad))).toEqual(Buffer.from(sealed));
      expect(Buffer.from(b.open(k, n, sealed, ad)!)).toEqual(p);
      // noise decrypts in place: dst is the ciphertext's own memory
      const frame = Buffer.from(sealed);
      const dst = frame.subarray(0, size);
      expect(b.open(k, n, frame, ad, dst)).toBe(dst);
      expect(Buffer.from(dst)).toEqual(p);
      const bad = Buffer.from(sealed);
      bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
      expect(a.open(k, n, bad, ad)).toBeNull();
      expect(b.open(k, n, bad, ad)).toBeNull();
    }
    const realSha = await load<Sha>('@chainsafe/as-sha256');
    const shimSha = await load<Sha>(pathToFileURL(join(REPO, 'scripts', 'shims', 'as-sha256.js')).href);
    const data = randomBytes(1000);
    expect(Buffer.from(shimSha.digest(data))).toEqual(Buffer.from(realSha.digest(data)));
  });

  it('the bundle holds the stand-ins, neither WebAssembly module, and nothing of the CLI', async () => {
    const script = (await import(pathToFileURL(join(REPO, 'scripts', 'bundle.js')).href)) as BundleScript;
    const out = await tempDir('lo-agent-inputs-');
    const { metafile } = (await script.agentBundle(join(out, AGENT_BUNDLE_DIR), join(REPO, 'src'))) as { metafile: { inputs: object } };
    const inputs = Object.keys(metafile.inputs);
    expect(inputs).toEqual(
      expect.arrayContaining(['scripts/shims/as-chacha20poly1305.js', 'scripts/shims/as-sha256.js', 'src/agent/agent.ts']),
    );
    expect(inputs.filter((f) => /@chainsafe\/as-|src\/cli\/|src\/usecases\//.test(f))).toEqual([]);
  }, 60_000);
});
