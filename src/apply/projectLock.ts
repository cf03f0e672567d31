import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ExitCode, LoError } from '../errors/loError.js';

/** The lock file in `<state>/projects/<name>/`: one changing lo command per project at a time. */
export const PROJECT_LOCK_FILE = 'lock';

/** What the lock file holds: who holds it, so the error can name the holder and a dead holder can be detected. */
export interface LockHolder {
  pid: number;
  /** The holder's process start time (Linux: /proc/<pid>/stat field 22, clock ticks since boot), so a reused pid is not taken for the holder. */
  pidStart: string | null;
  host: string;
  /** When the lock was taken (ISO time). */
  since: string;
  /** The command, e.g. `lo provision`. */
  command: string;
  /** A random token: a taker of a stale lock checks it moved the very lock it judged stale. */
  token: string;
}

export interface ProjectLockOptions {
  /** `--wait`: wait up to this long for the holder to finish instead of failing at once (default 0). */
  waitMs?: number;
  /** Process facts, injectable for tests. */
  pid?: number;
  now?: () => Date;
  /** Whether a pid is alive on this host and (when known) started at pidStart. */
  isAlive?: (pid: number, pidStart: string | null) => Promise<boolean>;
}

/** A held lock: `release` removes it (only if it still is ours). */
export interface ProjectLock {
  path: string;
  release: () => Promise<void>;
}

/** A file written while being created is not judged stale for this long (its holder is between create and write). */
const PARTIAL_GRACE_MS = 5_000;

/**
 * Takes the project's lock: creates `<projectDir>/lock` exclusively (O_EXCL) with the holder's pid, start
 * time, host and command. A lock whose holder is gone (no such pid, or the pid now belongs to a process
 * started later) is stale and taken over; a live holder makes this fail with E_PROJECT_LOCKED naming it,
 * or, with `waitMs`, wait for it. Two concurrent `lo provision` / `lo destroy` / `lo registry up|down|clean`
 * of one project therefore never interleave their Docker and file changes.
 */
export async function lockProject(projectDir: string, command: string, opts: ProjectLockOptions = {}): Promise<ProjectLock> {
  const path = join(projectDir, PROJECT_LOCK_FILE);
  const pid = opts.pid ?? process.pid;
  const now = opts.now ?? (() => new Date());
  const isAlive = opts.isAlive ?? processAlive;
  const deadline = Date.now() + (opts.waitMs ?? 0);
  await mkdir(projectDir, { recursive: true, mode: 0o700 });
  const mine: LockHolder = {
    pid,
    pidStart: await processStart(pid),
    host: hostname(),
    since: now().toISOString(),
    command,
    token: randomBytes(8).toString('hex'),
  };
  let delay = 50;
  for (;;) {
    if (await tryCreate(path, mine)) return { path, release: () => releaseLock(path, mine.token) };
    const holder = await readHolder(path);
    if (holder === 'gone') continue;
    if (await isStale(path, holder, isAlive)) {
      await takeOver(path, holder);
      continue;
    }
    if (Date.now() >= deadline) throw lockedError(path, holder, opts.waitMs ?? 0);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 1000);
  }
}

/** Runs `fn` holding the project's lock; the lock goes when `fn` ends, however it ends. */
export async function withProjectLock<T>(projectDir: string, command: string, opts: ProjectLockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await lockProject(projectDir, command, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function tryCreate(path: string, holder: LockHolder): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(`${JSON.stringify(holder)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

/** The holder recorded in the file; null when it cannot be parsed (being written, or damaged); 'gone' when it was just removed. */
async function readHolder(path: string): Promise<LockHolder | null | 'gone'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.token !== 'string') return null;
    return {
      pid: h.pid,
      pidStart: typeof h.pidStart === 'string' ? h.pidStart : null,
      host: String(h.host ?? ''),
      since: String(h.since ?? ''),
      command: String(h.command ?? 'lo'),
      token: h.token,
    };
  } catch {
    return null;
  }
}

async function isStale(path: string, holder: LockHolder | null, isAlive: NonNullable<ProjectLockOptions['isAlive']>): Promise<boolean> {
  if (holder === null) {
    // Unreadable content: stale once it is older than a writer needs between create and write.
    const s = await stat(path).catch(() => null);
    return s !== null && Date.now() - s.mtimeMs > PARTIAL_GRACE_MS;
  }
  // A holder on another host (a shared state directory) cannot be checked: never taken for dead.
  if (holder.host !== hostname()) return false;
  return !(await isAlive(holder.pid, holder.pidStart));
}

/**
 * Removes a stale lock without removing a fresh one that replaced it meanwhile: the file is first moved
 * aside (atomic), then checked; if what was moved is not the lock judged stale, it is put back (link fails
 * when a third process took the lock in between, and then the moved one is dropped: its holder finds its
 * lock gone at release, which is harmless).
 */
async function takeOver(path: string, stale: LockHolder | null): Promise<void> {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readHolder(aside);
  const same = stale === null ? moved === null : moved !== 'gone' && moved !== null && moved.token === stale.token;
  if (!same) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}

async function releaseLock(path: string, token: string): Promise<void> {
  const holder = await readHolder(path).catch(() => null);
  if (holder !== null && holder !== 'gone' && holder.token === token) await rm(path, { force: true });
}

function lockedError(path: string, holder: LockHolder | null, waitedMs: number): LoError {
  const who = holder
    ? `${holder.command} (pid ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ''}, since ${holder.since})`
    : 'another lo run';
  return new LoError(
    'E_PROJECT_LOCKED',
    `${waitedMs > 0 ? `still locked after ${Math.round(waitedMs / 1000)} s: ` : ''}this project is being changed by ${who}; nothing was changed (lock ${path})`,
    {
      hint: `wait for it to finish, or run again with --wait; if no lo runs any more, remove ${path}`,
      exitCode: ExitCode.badInput,
    },
  );
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or null where /proc is not there. */
export async function processStart(pid: number): Promise<string | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return null;
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return rest[19] ?? null;
}

/** Whether `pid` runs (signal 0: EPERM means it runs as another user) and, when known, is the process that started at `pidStart`. */
export async function processAlive(pid: number, pidStart: string | null): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (pidStart === null) return true;
  const current = await processStart(pid);
  return current === null || current === pidStart;
}
