import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LoError } from '../errors/loError.js';
import { createFileExclusive, SECRET_MODE } from '../apply/files.js';

/** go-libp2p / IPFS swarm.key format, which @libp2p/pnet reads: a header, an encoding line and 64 hex chars. */
const HEADER = '/key/swarm/psk/1.0.0/';

export function generateSwarmKey(random: (n: number) => Buffer = randomBytes): string {
  return `${HEADER}\n/base16/\n${random(32).toString('hex')}\n`;
}

export function parseSwarmKey(text: string, file = 'swarm key'): Uint8Array {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines[0] !== HEADER || lines[1] !== '/base16/' || !/^[0-9a-f]{64}$/i.test(lines[2] ?? '')) {
    throw new LoError('E_CONFIG', `${file} is not a swarm key (expected ${HEADER}, /base16/ and 64 hex characters)`, {
      hint: 'remove it and let `lo provision` (or `lo p2p key <path>`) write a new one',
      exitCode: 2,
    });
  }
  return new TextEncoder().encode(`${lines.slice(0, 3).join('\n')}\n`);
}

/** Writes a new swarm key (0600, atomically) unless one exists; returns the key as @libp2p/pnet expects it. */
export async function ensureSwarmKey(path: string, random?: (n: number) => Buffer): Promise<{ psk: Uint8Array; created: boolean }> {
  try {
    const text = await readFile(path, 'utf8');
    // Parsed first: a file that is not a swarm key (a wrong path) is refused and its mode left alone.
    const psk = parseSwarmKey(text, path);
    await chmod(path, 0o600);
    return { psk, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const text = generateSwarmKey(random);
  // Two concurrent provisions: the first key written wins, the other run uses it.
  if (!(await createFileExclusive(path, text, SECRET_MODE)))
    return { psk: parseSwarmKey(await readFile(path, 'utf8'), path), created: false };
  return { psk: parseSwarmKey(text, path), created: true };
}

export async function readSwarmKey(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new LoError('E_CONFIG', `cannot read swarm key ${path}: ${(err as Error).message}`, {
      hint: 'pass --key with the cluster key file',
      exitCode: 2,
      cause: err,
    });
  }
  return parseSwarmKey(text, path);
}
