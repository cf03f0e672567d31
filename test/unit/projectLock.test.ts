/**
 * The project lock with real processes: a second lo process holding `<state>/projects/<name>/lock` makes a
 * changing command fail with E_PROJECT_LOCKED naming it, or wait for it (`--wait`); a holder that died
 * (its pid gone, or the pid reused by a later process) leaves a stale lock that is taken over; two processes
 * racing for a free lock never both get it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { lockProject, processStart, withProjectLock } from '../../src/apply/projectLock.js';
import { LoError } from '../../src/errors/loError.js';

const HOLDER = join(import.meta.dirname, '../fixtures/lock/holder.ts');
const VITE_NODE = join(import.meta.dirname, '../../node_modules/.bin/vite-node');

interface Holder {
  child: ChildProcessWithoutNullStreams;
  /** The next line the holder prints. */
  next: () => Promise<string>;
  exited: Promise<number | null>;
}

const children: ChildProcessWithoutNullStreams[] = [];
let dir = '';

function holder(projectDir: string, command: string, waitMs?: number): Holder {
  const child = spawn(VITE_NODE, [HOLDER, projectDir, command, ...(waitMs ? [String(waitMs)] : [])], { stdio: 'pipe' });
  children.push(child);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    next: async () => {
      const { value, done } = await lines.next();
      if (done) throw new Error(`holder exited without output: ${child.stderr.read()?.toString() ?? ''}`);
      return value as string;
    },
    exited,
  };
}

const fresh = (): string => {
  dir = mkdtempSync(join(tmpdir(), 'lo-lock-'));
  return join(dir, 'projects', 'p');
};

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('project lock across processes', () => {
  it('a held lock refuses another lo with E_PROJECT_LOCKED naming the holder; release frees it', async () => {
    const projectDir = fresh();
    const a = holder(projectDir, 'lo provision');
    const line = await a.next();
    expect(line).toMatch(/^locked \d+$/);
    const pid = Number(line.split(' ')[1]);

    const err = await lockProject(projectDir, 'lo destroy').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).code).toBe('E_PROJECT_LOCKED');
    expect((err as LoError).exitCode).toBe(2);
    expect((err as LoError).message).toContain(`lo provision (pid ${pid}, since `);
    expect((err as LoError).message).toContain(join(projectDir, 'lock'));
    expect((err as LoError).hint).toContain('--wait');
    // the holder's lock is untouched
    expect(JSON.parse(readFileSync(join(projectDir, 'lock'), 'utf8')).pid).toBe(pid);

    a.child.stdin.write('release\n');
    expect(await a.next()).toBe('released');
    await a.exited;
    const ours = await lockProject(projectDir, 'lo destroy');
    expect(JSON.parse(readFileSync(ours.path, 'utf8'))).toMatchObject({ pid: process.pid, command: 'lo destroy' });
    await ours.release();
    expect(existsSync(ours.path)).toBe(false);
  });

  it('--wait waits for the holder to finish, then takes the lock', async () => {
    const projectDir = fresh();
    const a = holder(projectDir, 'lo registry clean');
    expect(await a.next()).toMatch(/^locked/);
    let got = false;
    const waiting = lockProject(projectDir, 'lo provision', { waitMs: 60_000 }).then((l) => {
      got = true;
      return l;
    });
    // still waiting while the holder holds it
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toBe(false);
    a.child.stdin.write('release\n');
    const lock = await waiting;
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).command).toBe('lo provision');
    await lock.release();
  });

  it('a lock left by a process that died is stale and taken over', async () => {
    const projectDir = fresh();
    const a = holder(projectDir, 'lo provision');
    expect(await a.next()).toMatch(/^locked/);
    a.child.stdin.write('die\n');
    await a.exited;
    expect(existsSync(join(projectDir, 'lock'))).toBe(true);
    const value = await withProjectLock(projectDir, 'lo destroy', {}, async () =>
      JSON.parse(readFileSync(join(projectDir, 'lock'), 'utf8')),
    );
    expect(value).toMatchObject({ pid: process.pid, command: 'lo destroy' });
    expect(existsSync(join(projectDir, 'lock'))).toBe(false);
  });

  it('a pid reused by a later process is not the holder: the lock is stale', async () => {
    const projectDir = fresh();
    mkdirSync(projectDir, { recursive: true });
    const start = await processStart(process.pid);
    // This very process is alive, but the lock says its pid started at another time: a reused pid.
    const stale = {
      pid: process.pid,
      pidStart: start === null ? null : `${Number(start) + 1}`,
      host: hostname(),
      since: '',
      command: 'lo provision',
      token: 'x',
    };
    writeFileSync(join(projectDir, 'lock'), JSON.stringify(stale));
    if (start === null) {
      // Without /proc the pid alone decides: alive, so locked.
      await expect(lockProject(projectDir, 'lo destroy')).rejects.toMatchObject({ code: 'E_PROJECT_LOCKED' });
      return;
    }
    const lock = await lockProject(projectDir, 'lo destroy');
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).token).not.toBe('x');
    await lock.release();
  });

  it('two processes racing for a free lock: exactly one gets it', async () => {
    const projectDir = fresh();
    const a = holder(projectDir, 'lo provision');
    const b = holder(projectDir, 'lo destroy');
    const results = (await Promise.all([a.next(), b.next()])).map((l) => l.replace(/\d+$/, 'N')).sort();
    expect(results).toEqual(['locked N', 'refused E_PROJECT_LOCKED']);
  });
});
