import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { kindCli } from '../../src/adapters/kindCli.js';
import { kubectl } from '../../src/adapters/kubectl.js';
import { createLog } from '../../src/runtime/log.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/bin/', import.meta.url));

describe('kind and kubectl log every call through the injected log', () => {
  it('kind version and kubectl version --client: start and end lines, with the command', async () => {
    const lines: string[] = [];
    const log = createLog({ write: (l) => lines.push(l), now: () => 0 });
    const env = { PATH: process.env.PATH ?? '' };
    await kindCli({ bin: `${FIXTURES}kind`, env, log }).version();
    await kubectl({ kubeconfig: '/nonexistent', bin: `${FIXTURES}kubectl`, env, log }).version();
    expect(lines).toEqual([
      `[lo] running ${FIXTURES}kind version…\n`,
      `[lo] ran ${FIXTURES}kind version (0 ms)\n`,
      `[lo] running ${FIXTURES}kubectl --kubeconfig /nonexistent version --client --output json…\n`,
      `[lo] ran ${FIXTURES}kubectl --kubeconfig /nonexistent version --client --output json (0 ms)\n`,
    ]);
  });

  it('a missing binary logs the failure and still becomes the typed error', async () => {
    const lines: string[] = [];
    const log = createLog({ write: (l) => lines.push(l), now: () => 0 });
    const err = await kindCli({ bin: 'lo-no-such-kind', env: { PATH: '/nonexistent' }, log })
      .getClusters()
      .catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('E_TOOL_MISSING');
    expect(lines[0]).toBe('[lo] running lo-no-such-kind get clusters…\n');
    expect(lines[1]).toMatch(/^\[lo\] failed to run lo-no-such-kind get clusters: /);
  });
});

describe('kubectl exiting non-zero', () => {
  it("every call becomes E_STEP naming the command, with kubectl's stderr", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lo-kubectl-'));
    try {
      const bin = join(dir, 'kubectl');
      writeFileSync(bin, '#!/bin/sh\necho "error: the server could not find the requested resource" >&2\nexit 3\n');
      chmodSync(bin, 0o755);
      const k = kubectl({ kubeconfig: '/nonexistent', bin, env: { PATH: process.env.PATH ?? '' } });
      const failure = (p: Promise<unknown>): Promise<unknown> =>
        p.then(
          () => null,
          (e: unknown) => e,
        );
      const cases: Array<[Promise<unknown>, string]> = [
        [k.getConfigMapData('kube-public', 'lo'), 'kubectl get configmap lo --namespace kube-public --output json --ignore-not-found'],
        [k.apply('kind: ConfigMap\n'), 'kubectl apply --filename -'],
        [k.version(), 'kubectl version --client'],
      ];
      for (const [call, command] of cases) {
        const err = await failure(call);
        expect(err).toMatchObject({
          code: 'E_STEP',
          message: `\`${command}\` failed (exit 3):\nerror: the server could not find the requested resource`,
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
