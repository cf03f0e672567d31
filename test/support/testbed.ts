/**
 * vitest globalSetup: makes `npm test` alone work on a fresh machine. When something the end-to-end tests
 * need is missing (Docker engine, registry:2, the containerd node images, the real kind for kindStrict), it
 * runs scripts/testbed.sh, which needs root and apt; when it cannot, it stops the run with one message
 * saying what is missing and how to get it, instead of every e2e test failing on its own. Unit-only runs
 * (every file under test/unit) skip the check.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const IMAGES = ['registry:2', 'lo-test/node:containerd', 'lo-test/node:containerd-1.7', 'lo-test/node:containerd-2.1'];
const REAL_KIND = process.env.LO_REAL_KIND || '/var/cache/lo-testbed/bin/kind';

function missing(): string[] {
  const out: string[] = [];
  for (const tool of ['skopeo', 'docker']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) out.push(tool);
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) return [...out, 'a running Docker engine'];
  for (const image of IMAGES)
    if (spawnSync('docker', ['image', 'inspect', image], { stdio: 'ignore' }).status !== 0) out.push(`image ${image}`);
  if (!existsSync(REAL_KIND)) out.push(`kind 0.33 at ${REAL_KIND}`);
  return out;
}

export default function setup(): void {
  // `vitest run test/unit/...`: file filters on the command line, all of them unit tests.
  const filters = process.argv.slice(2).filter((a) => !a.startsWith('-') && a !== 'run' && !a.endsWith('vitest') && !a.endsWith('.mjs'));
  if (filters.length > 0 && filters.every((f) => f.includes('test/unit'))) return;
  let gaps = missing();
  if (gaps.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get']).status === 0;
  if (!isRoot || !hasApt) {
    throw new Error(
      `lo's end-to-end tests need: ${gaps.join(', ')}.\n` +
        `  ${!isRoot ? 'This is not root, ' : ''}${!hasApt ? 'there is no apt-get, ' : ''}so the test bed cannot be set up here.\n` +
        `  Fix: run \`sudo bash scripts/testbed.sh\` on a Debian machine (it installs docker.io, containerd, skopeo and\n` +
        `  docker-registry, starts dockerd and builds the offline images), or run only the unit tests: \`npx vitest run test/unit\`.`,
    );
  }
  console.log(`[testbed] missing ${gaps.join(', ')}: running scripts/testbed.sh`);
  try {
    execFileSync('bash', [join(ROOT, 'scripts', 'testbed.sh')], { stdio: 'inherit', timeout: 15 * 60_000 });
  } catch (err) {
    throw new Error(`scripts/testbed.sh failed (${(err as Error).message}); the end-to-end tests cannot run without it.`);
  }
  gaps = missing();
  if (gaps.length) throw new Error(`scripts/testbed.sh ran but these are still missing: ${gaps.join(', ')}`);
}
