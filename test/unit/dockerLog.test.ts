/**
 * The dockerode clients put every call through the debug log. Against the real engine, read-only: nothing is
 * created (the names below do not exist), so no lock and no cleanup are needed.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectClients } from '../../src/adapters/docker/index.js';
import { LoError } from '../../src/errors/loError.js';
import { createLog } from '../../src/runtime/log.js';

describe('debug log on the dockerode clients (real engine)', () => {
  it('logs pinging…/pinged, inspecting…/inspected (404 is state, not failure), starting…/failed to start', async () => {
    const lines: string[] = [];
    const log = createLog({ write: (l) => lines.push(l.trimEnd()) });
    const docker = await connectClients({ env: process.env, log });
    const ghost = `lo-no-such-${randomBytes(4).toString('hex')}`;

    expect(await docker.containers.inspect(ghost)).toBeNull();
    const err = await docker.containers.start(ghost).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).code).toBe('E_DOCKER');
    expect((err as Error).message).toMatch(new RegExp(`^starting container ${ghost}: .*no such container`, 'i'));

    expect(lines[0]).toMatch(/^\[lo\] pinging Docker engine unix:\/\/\/var\/run\/docker\.sock…$/);
    expect(lines[1]).toMatch(/^\[lo\] pinged Docker engine unix:\/\/\/var\/run\/docker\.sock \(\d+ ms\)$/);
    expect(lines.slice(2, 4)).toEqual([
      `[lo] inspecting container ${ghost}…`,
      expect.stringMatching(new RegExp(`^\\[lo\\] inspected container ${ghost} \\(\\d+ ms\\)$`)),
    ]);
    expect(lines[4]).toBe(`[lo] starting container ${ghost}…`);
    expect(lines[5]).toMatch(
      new RegExp(`^\\[lo\\] failed to start container ${ghost}: starting container ${ghost}: .*no such container`, 'i'),
    );
    expect(lines).toHaveLength(6);
  });

  it('an unreachable engine is logged as a failed ping and raised as exit 4', async () => {
    const lines: string[] = [];
    const err = await connectClients({
      env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
      log: createLog({ write: (l) => lines.push(l) }),
    }).catch((e: unknown) => e);
    expect((err as LoError).code).toBe('E_DOCKER_UNREACHABLE');
    expect((err as LoError).exitCode).toBe(4);
    expect(lines.map((l) => l.trimEnd())).toEqual([
      '[lo] pinging Docker engine unix:///nonexistent/docker.sock…',
      expect.stringMatching(/^\[lo\] failed to ping Docker engine unix:\/\/\/nonexistent\/docker\.sock: cannot reach the Docker engine/),
    ]);
  });
});
