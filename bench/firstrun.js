/**
 * First `lo registry up` on a new machine (issue 15): the CA (RSA 3072, mkcert's) and the default project's
 * certificates (ECDSA P-256 keys, as `mkcert -ecdsa`) created from nothing, in-process (target <= 1.5 s). The CA
 * key is generated off the main thread (async generateKeyPair); certificates are signed with Node's native RSA.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function run(report) {
  const { loadPlan } = await import('../dist/usecases/plan.js');
  const { ensureTls } = await import('../dist/apply/tls/ensureTls.js');
  const dirs = [];
  try {
    const fresh = async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lo-bench-first-'));
      dirs.push(dir);
      const paths = { stateDir: join(dir, 'state'), caRoot: join(dir, 'caroot') };
      // no clusters/ in dir: the built-in default spec; no Docker asked (no shared mirrors observed)
      const { plan } = await loadPlan({ domain: 'lok8s.dev', cwd: dir }, { paths, observeShared: async () => ({ mirrors: [] }) });
      return plan;
    };
    const probe = await fresh();
    report.heading(`new CA + ${probe.tls.certificates.length} certificates (default project), from nothing`);
    const plans = [];
    for (let i = 0; i < 5; i++) plans.push(await fresh());
    const r = await report.time('ensureTls: CA and certificates created', async (i) => {
      const m = await ensureTls(plans[i]);
      if (!m?.caCreated) throw new Error('the CA already existed');
    });
    report.value('first-run TLS material (median)', r.median / 1000, 's', { target: 1.5 });
    const again = await report.time('ensureTls again (all unchanged)', () => ensureTls(plans[0]));
    void again;
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
