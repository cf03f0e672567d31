/**
 * CLI start-up (issue 15), measured side by side in one run, interleaved so machine load hits every subject alike:
 *  - `lo --help` vs `node -e 0` (target <= 1.5x);
 *  - `lo plan` (the default spec) vs `node -e 0` (target <= 2x);
 *  - `lo registry status` (a project with nothing created: connects to Docker, lists, answers) vs `node -e 0`
 *    plus the same status call made in-process (target <= 2x);
 *  - the same commands without the code cache (LO_COMPILE_CACHE=0: the bundle compiled from source, as on the
 *    first run of a command after an install), and from the unbundled tsc output (dist/cli/main.js), to show what
 *    the bundle and the cache each pay.
 * The code cache lives in a temporary XDG_CACHE_HOME, filled by the warm-up pass.
 * The no-op `lo registry up` CLI ratio is in the registry section (it needs registries that exist).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const sh = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const LO = join(root, 'bin', 'lo.js');
const UNBUNDLED = pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href;

export async function run(report) {
  const dir = mkdtempSync(join(tmpdir(), 'lo-bench-cli-'));
  const paths = { stateDir: join(dir, 'state'), caRoot: join(dir, 'caroot') };
  const env = { ...process.env, LO_STATE_DIR: paths.stateDir, CAROOT: paths.caRoot, XDG_CACHE_HOME: join(dir, 'cache') };
  delete env.LO_COMPILE_CACHE;
  const noCache = { ...env, LO_COMPILE_CACHE: '0' };
  const { registryStatus } = await import('../dist/usecases/registry.js');
  const opts = { domain: 'lok8s.dev', cwd: dir }; // no clusters/ in dir: the built-in default spec
  try {
    const node = (args, e = env) => sh(process.execPath, args, { env: e, cwd: dir });
    // bin/lo.js as it was before the bundle: the tsc output, one file per module.
    const entry = join(dir, 'lo-unbundled.mjs');
    writeFileSync(entry, `import { main } from ${JSON.stringify(UNBUNDLED)};\nprocess.exitCode = await main(process.argv);\n`);
    const unbundled = (args) => node([entry, ...args]);
    const subjects = {
      node0: () => node(['-e', '0']),
      help: () => node([LO, '--help']),
      plan: () => node([LO, 'plan']),
      status: () => node([LO, 'registry', 'status']),
      statusIn: () => registryStatus(opts, { paths }),
      helpNoCache: () => node([LO, '--help'], noCache),
      planNoCache: () => node([LO, 'plan'], noCache),
      statusNoCache: () => node([LO, 'registry', 'status'], noCache),
      helpUnbundled: () => unbundled(['--help']),
      planUnbundled: () => unbundled(['plan']),
      statusUnbundled: () => unbundled(['registry', 'status']),
    };
    const samples = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
    for (const fn of Object.values(subjects)) await fn(); // warm the file cache
    for (let i = 0; i < 11; i++) {
      for (const [k, fn] of Object.entries(subjects)) {
        const t = performance.now();
        await fn();
        samples[k].push(performance.now() - t);
      }
    }
    report.heading('CLI processes vs `node -e 0` (interleaved, 11 runs each)');
    const n0 = report.sample('node -e 0', samples.node0);
    const help = report.sample('lo --help (bundle)', samples.help);
    const plan = report.sample('lo plan (bundle)', samples.plan);
    const status = report.sample('lo registry status (bundle, nothing created)', samples.status);
    const statusIn = report.sample('registry status in-process (same project)', samples.statusIn);
    const helpC = report.sample('lo --help (bundle, no code cache)', samples.helpNoCache);
    const planC = report.sample('lo plan (bundle, no code cache)', samples.planNoCache);
    const statusC = report.sample('lo registry status (bundle, no code cache)', samples.statusNoCache);
    const helpU = report.sample('lo --help (unbundled dist/cli/main.js)', samples.helpUnbundled);
    const planU = report.sample('lo plan (unbundled)', samples.planUnbundled);
    const statusU = report.sample('lo registry status (unbundled)', samples.statusUnbundled);
    report.ratio('lo --help / node -e 0', help, n0, { target: 1.5 });
    report.ratio('lo plan / node -e 0', plan, n0, { target: 2 });
    report.ratio('lo registry status / (node -e 0 + in-process status)', status.median, n0.median + statusIn.median, { target: 2 });
    report.ratio('no code cache: lo --help / node -e 0', helpC, n0);
    report.ratio('no code cache: lo plan / node -e 0', planC, n0);
    report.ratio('no code cache: status / (node -e 0 + in-process status)', statusC.median, n0.median + statusIn.median);
    report.ratio('unbundled lo --help / node -e 0', helpU, n0);
    report.ratio('unbundled lo plan / node -e 0', planU, n0);
    report.ratio('unbundled status / (node -e 0 + in-process status)', statusU.median, n0.median + statusIn.median);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
