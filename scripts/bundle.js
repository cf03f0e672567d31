#!/usr/bin/env node
/**
 * `npm run build`, second step (after tsc): bundles the CLI with esbuild into one CommonJS file,
 * dist/bundle/lo.cjs (and its sha256 in lo.cjs.sha256), which bin/lo.js runs through V8's code cache
 * (src/cli/loadBundle.ts): Node reads one file instead of ~1,000 modules, and a command run before skips
 * compiling it. CommonJS because Node 20 caches compiled code only for vm.Script (esbuild splits only ESM; with
 * the code cache one file beats per-command chunks, see docs/speed.md).
 *
 * - The agent-only dependencies (libp2p, gRPC, prom-client, ...) stay external: they load from node_modules,
 *   only when `lo p2p agent` runs.
 * - dockerode's SSH transport (ssh2, with a native addon) is loaded on first use of an ssh:// DOCKER_HOST,
 *   not at start-up (docker-modem requires it at its top).
 * - Modules that locate package files from `import.meta.url` (package.json, schemas/, the .proto files, the
 *   package root) keep the URL they have in dist/, so the same relative paths hold inside the bundle.
 * - The agent-only dependencies are ESM: the bundle's dynamic import() of them goes through Node's loader.
 */
import { createHash } from 'node:crypto';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
const outfile = join(outdir, 'lo.cjs');
const lightfile = join(outdir, 'lo-light.cjs');

/** Dependencies only `lo p2p agent` loads: not bundled. */
export const AGENT_ONLY = [
  'libp2p',
  '@libp2p/*',
  '@chainsafe/*',
  '@grpc/*',
  '@multiformats/*',
  'multiformats',
  'multiformats/*',
  'prom-client',
];

/**
 * CommonJS modules a dependency requires at its top but needs only on rare paths: replaced by a stub that
 * requires the real module (from node_modules, not bundled) on first call.
 */
export const LAZY = [
  // dockerode -> docker-modem: the SSH transport (ssh2 and its native addon), for ssh:// DOCKER_HOST only
  { from: /docker-modem[\\/]lib$/, request: './ssh', module: 'docker-modem/lib/ssh.js' },
  // dockerode: BuildKit sessions (gRPC, protobufjs), for `version: '2'` builds only (lo builds with the classic builder)
  { from: /dockerode[\\/]lib$/, request: './session', module: 'dockerode/lib/session.js' },
  // dockerode requires ./buildkit (protobufjs) inside the one function that uses it: external is enough
  { from: /dockerode[\\/]lib$/, request: './buildkit', module: 'dockerode/lib/buildkit.js', external: true },
];

const lazyRequires = {
  name: 'lazy-requires',
  setup(b) {
    for (const l of LAZY) {
      const escaped = l.request.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      b.onResolve({ filter: new RegExp(`^${escaped}$`) }, (args) =>
        l.from.test(args.resolveDir)
          ? l.external
            ? { path: l.module, external: true }
            : { path: l.module, namespace: 'lo-lazy' }
          : undefined,
      );
    }
    b.onLoad({ filter: /.*/, namespace: 'lo-lazy' }, (args) => ({
      // A function stub: every one of these modules exports a function.
      contents: `let m; module.exports = function () { m ??= require(${JSON.stringify(args.path)}); return m.apply(this, arguments); };`,
      loader: 'js',
    }));
    b.onResolve({ filter: /^(docker-modem|dockerode)\/lib\/[a-z]+\.js$/ }, (args) =>
      args.namespace === 'lo-lazy' ? { path: args.path, external: true } : undefined,
    );
  },
};

/**
 * The spec validator precompiled (ajv standalone code, ESM) from the options and schema src/spec/validator.ts
 * compiles at run time. Exported for the unit test that checks both validate alike.
 */
export async function standaloneSpecValidator(options) {
  const schema = JSON.parse(await readFile(join(root, 'schemas', 'cluster.lok8s.schema.json'), 'utf8'));
  const ajv = new Ajv({ ...options, code: { source: true, esm: true } });
  return standaloneCode(ajv, ajv.compile(schema));
}

const precompiledValidator = {
  name: 'precompiled-spec-validator',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]spec[\\/]validator\.ts$/ }, () => ({
      contents: "import validate from 'lo-spec-validator-standalone'; export const validateSchema = validate;",
      loader: 'js',
      resolveDir: join(root, 'src', 'spec'),
    }));
    b.onResolve({ filter: /^lo-spec-validator-standalone$/ }, () => ({ path: 'spec-validator', namespace: 'lo-standalone' }));
    b.onLoad({ filter: /.*/, namespace: 'lo-standalone' }, async () => ({
      // tsc's output of src/spec/validator.ts: the options the run-time compile uses (built just before)
      contents: await standaloneSpecValidator((await import('../dist/spec/validator.js')).SPEC_AJV_OPTIONS),
      loader: 'js',
      resolveDir: root, // its require('ajv/dist/runtime/...') resolve from the package
    }));
  },
};

/**
 * The agent (`lo p2p agent`, src/agent/run.ts) is not in the CLI bundle: the command imports tsc's ESM output
 * (dist/agent/run.js), so its ESM-only dependencies (libp2p, ...) load as ESM, which a CommonJS bundle's
 * require() cannot do before Node 20.19. A dynamic import() inside a vm.Script compiled from V8's code cache has
 * no loader in Node 20 (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): src/cli/loadBundle.ts hands the bundle
 * `__loImport`, bin/lo.js's own import(); loaded by a plain require() the bundle uses import() itself.
 * (The agent image runs the agent's own bundle, agentBundle below.)
 */
const agentFromDist = {
  name: 'agent-from-dist',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/\.\.\/agent\/run\.js$/ }, (args) =>
      /[\\/]src[\\/]cli[\\/]commands$/.test(args.resolveDir) ? { path: 'agent', namespace: 'lo-agent' } : undefined,
    );
    // p2p.ts uses runAgent only (a new import from run.js fails the build: no such export here).
    b.onLoad({ filter: /.*/, namespace: 'lo-agent' }, () => ({
      contents: [
        "const url = require('node:url').pathToFileURL(require('node:path').join(__dirname, '..', 'agent', 'run.js')).href;",
        "const load = () => (typeof __loImport === 'function' ? __loImport(url) : import(url));",
        'export async function runAgent(...args) { return (await load()).runAgent(...args); }',
      ].join('\n'),
      loader: 'js',
    }));
  },
};

const distUrls = {
  name: 'dist-relative-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const inDist = join(root, 'dist', relative(join(root, 'src'), args.path)).replace(/\.ts$/, '.js');
      const rel = relative(outdir, inDist).split('\\').join('/');
      const here = "require('node:url').pathToFileURL(__filename)"; // CommonJS: the bundle's own file
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, ${here}).href`), loader: 'ts' };
    });
  },
};

/**
 * The light bundle, dist/bundle/lo-light.cjs: what `lo plan`, `lo --help` and `lo --version` run (bin/lo.js picks
 * it, lightBundle in src/cli/loadBundle.ts). The same entry, but every dynamic import() those commands never make
 * (the other commands' use cases: applying to Docker, TLS, kind, images, ...) becomes a stub that throws, and
 * dockerode (plan uses it only for a DOCKER_HOST that is not a unix socket) loads from node_modules: ~0.9 MB instead
 * of ~2.5, so Node reads less and V8 deserialises less cached code (docs/speed.md). Each bundle is still one whole
 * CommonJS file for the code cache.
 */
const LIGHT_IMPORTS = [
  { from: /[\\/]src[\\/]cli$/, request: /^\.\/commands\/[a-z0-9]+\.js$/ }, // every command registers: help lists them all
  { from: /[\\/]src[\\/]cli[\\/]commands$/, request: /^\.\.\/\.\.\/usecases\/plan\.js$/ }, // `lo plan`
  { from: /[\\/]src[\\/]cli$/, request: /^\.\.\/usecases\/registrySetup\.js$/ }, // its shared-mirror lookup
];
const lightImports = {
  name: 'light-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import' || LIGHT_IMPORTS.some((l) => l.from.test(args.resolveDir) && l.request.test(args.path)))
        return undefined;
      // require()d from node_modules: an import() inside the vm.Script has no loader (src/cli/loadBundle.ts)
      if (args.path === 'dockerode') return { path: 'dockerode', namespace: 'lo-require' };
      return { path: `${relative(root, args.resolveDir)}/${args.path}`, namespace: 'lo-not-light' };
    });
    b.onResolve({ filter: /^dockerode$/ }, (args) => (args.namespace === 'lo-require' ? { path: 'dockerode', external: true } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lo-require' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
    b.onLoad({ filter: /.*/, namespace: 'lo-not-light' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`internal: ${args.path} is not in dist/bundle/lo-light.cjs (scripts/bundle.js)`)});`,
      loader: 'js',
    }));
  },
};

/**
 * The agent image's content (src/apply/agentImage.ts copies exactly this directory, and its content hash covers
 * exactly it): dist/bundle/agent/agent.mjs, the agent's whole module graph from its own entry (src/agent/main.ts:
 * `p2p agent <options>`, nothing else of the CLI), and the containerd .proto files beside it (containerdSource.ts
 * looks for proto/ next to its import.meta.url, which in this bundle is agent.mjs's). ESM, as libp2p is; the
 * CommonJS dependencies (gRPC, protobufjs, prom-client) get a real require() from the banner, which
 * protobufjs's inquire() (an eval'd require of fs, long) also finds. No native addon and no file located by
 * import.meta.url in node_modules is on the agent's path (test/unit/agentImage.test.ts runs the bundle alone).
 * For the agent's memory (issue 15, docs/speed.md): whitespace and syntax minified (identifiers kept, so stack
 * traces name functions): V8 keeps the source of a module as a string, and the unminified file's comments hold
 * non-ASCII characters, which made it a two-byte string (6.2 MiB of heap for 3.2 MB); and the two WebAssembly
 * modules @chainsafe/libp2p-noise imports replaced by node:crypto (AGENT_SHIMS).
 */
export const AGENT_DIR = join(outdir, 'agent');

/** Dependencies of the agent replaced in its bundle by the modules in scripts/shims/ (same API, node:crypto). */
export const AGENT_SHIMS = ['@chainsafe/as-chacha20poly1305', '@chainsafe/as-sha256'];
const agentShims = {
  name: 'agent-shims',
  setup(b) {
    b.onResolve({ filter: /^@chainsafe\/as-(chacha20poly1305|sha256)$/ }, (args) =>
      AGENT_SHIMS.includes(args.path) ? { path: join(root, 'scripts', 'shims', `${args.path.slice('@chainsafe/'.length)}.js`) } : undefined,
    );
  },
};

export async function agentBundle(outDir = AGENT_DIR, srcDir = join(root, 'src')) {
  const result = await build({
    stdin: {
      // the one place the agent image's process touches process.argv, .env and .stderr
      contents: "import { agentMain } from './main.ts';\nprocess.exitCode = await agentMain(process.argv, process.env, process.stderr);\n",
      resolveDir: join(srcDir, 'agent'),
      sourcefile: 'src/agent/entry.ts',
      loader: 'ts',
    },
    outfile: join(outDir, 'agent.mjs'),
    // the path comments esbuild writes are relative to it: the same bytes from any checkout's directory
    absWorkingDir: dirname(srcDir),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    banner: {
      js: "import { createRequire as __loCreateRequire } from 'node:module';\nconst require = __loCreateRequire(import.meta.url);",
    },
    plugins: [agentShims],
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  // one-byte source string in V8 (see above)
  if ((await readFile(join(outDir, 'agent.mjs'))).some((c) => c > 0x7f)) throw new Error(`${outDir}/agent.mjs: not ASCII`);
  await cp(join(srcDir, 'agent', 'proto'), join(outDir, 'proto'), { recursive: true });
  return result;
}

export async function bundle() {
  await rm(outdir, { recursive: true, force: true }); // nothing of an earlier build left behind
  const cli = (file, plugins = []) =>
    build({
      entryPoints: [join(root, 'src', 'cli', 'main.ts')],
      outfile: file,
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      external: AGENT_ONLY,
      plugins: [...plugins, precompiledValidator, lazyRequires, agentFromDist, distUrls],
      legalComments: 'none',
      logLevel: 'warning',
      metafile: true,
    });
  const [result] = await Promise.all([cli(outfile), cli(lightfile, [lightImports]), agentBundle()]);
  // bin/lo.js is CommonJS (no ES module loader at start-up): it requires the loader as CommonJS too.
  await build({
    entryPoints: [join(root, 'src', 'cli', 'loadBundle.ts')],
    outfile: join(outdir, 'start.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  for (const file of [outfile, lightfile]) {
    const bytes = await readFile(file);
    // src/cli/loadBundle.ts reads a bundle as latin1 (no UTF-8 decoding): esbuild's default charset is ASCII.
    if (bytes.some((b) => b > 0x7f)) throw new Error(`${file}: not ASCII (loadBundle reads it as latin1)`);
    // The code cache's key (src/cli/loadBundle.ts): a new build never meets an old build's cached code.
    await writeFile(`${file}.sha256`, `${createHash('sha256').update(bytes).digest('hex')}\n`);
  }
  return result;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await bundle();
