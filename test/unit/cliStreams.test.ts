import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { oraReporter } from '../../src/cli/progress.js';
import type { CliIo, OutStream } from '../../src/cli/output.js';

/** A stream that keeps what is written to it. */
function sink(tty = false): OutStream & { text(): string } {
  let text = '';
  const s = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      text += String(chunk);
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number; text(): string };
  if (tty) Object.assign(s, { isTTY: true, columns: 80 });
  s.text = () => text;
  return s;
}

let tmp: string;
const savedCwd = process.cwd();
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'lo-streams-'));
});
afterAll(async () => {
  process.chdir(savedCwd);
  await rm(tmp, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs lo in-process with injected env and streams; fails if anything reached the process's own streams. */
async function lo(argv: string[], stdin: CliIo['stdin'] = new PassThrough()) {
  const stdout = sink();
  const stderr = sink();
  const leakedOut = vi.spyOn(process.stdout, 'write');
  const leakedErr = vi.spyOn(process.stderr, 'write');
  const env = {
    LO_STATE_DIR: join(tmp, 'state'),
    CAROOT: join(tmp, 'ca'),
    // no engine: `lo plan` sees an empty machine
    DOCKER_HOST: `unix://${join(tmp, 'no-docker.sock')}`,
  };
  const code = await main(['node', 'lo', ...argv], env, { stdout, stderr, stdin });
  expect(leakedOut).not.toHaveBeenCalled();
  expect(leakedErr).not.toHaveBeenCalled();
  return { code, out: stdout.text(), err: stderr.text() };
}

describe('commands write to the streams main injects', () => {
  it('lo plan --json: the plan on the injected stdout, nothing on the process streams', async () => {
    process.chdir(tmp);
    const r = await lo(['plan', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ project: { domain: 'lok8s.dev' } });
    expect(r.err).toBe('');
  });

  it('usage errors (commander) and lo errors (with --json) go to the injected streams', async () => {
    const usage = await lo(['registry', 'up', '--no-such-flag']);
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/unknown option '--no-such-flag'/);

    const missing = await lo(['plan', '--json', '--config', join(tmp, 'absent.yaml')]);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.out).error).toMatchObject({ exitCode: 2 });

    const text = await lo(['plan', '--config', join(tmp, 'absent.yaml')]);
    expect(text.err).toMatch(/^.*error.* .*absent\.yaml/m);
  });

  it('lo destroy reads its confirmation from the injected stdin and answers on the injected stderr', async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    stdin.end('n\n');
    const r = await lo(['destroy', 'lok8s.dev'], stdin);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/Delete the kind cluster and registries of lok8s\.dev .*\[y\/N\]/);
    expect(r.err).toMatch(/nothing deleted/);
    expect(r.out).toBe('');

    // not a terminal: refused, without reading
    const refused = await lo(['destroy', 'lok8s.dev'], new PassThrough());
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/refusing without confirmation/);
  });

  it("provision's ora reporter draws on the stream it is given", () => {
    const stream = sink();
    const rep = oraReporter(stream);
    rep.start('networks', 'project and shared networks');
    rep.succeed('networks', 'project and shared networks', [{ action: 'create', object: 'network lok8s' }], 12);
    rep.warn('the CA is not trusted');
    expect(stream.text()).toMatch(/networks.* project and shared networks - .*1 created.*\(12 ms\)/);
    expect(stream.text()).toMatch(/the CA is not trusted/);
  });
});
