import { createPublicKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import forge from 'node-forge';
import { afterAll, describe, expect, it } from 'vitest';
import { generateRsaKey, signCertificate } from '../../src/apply/tls/ca.js';
import { ensureTls } from '../../src/apply/tls/ensureTls.js';
import { LEAF_KEY_MODE } from '../../src/apply/tls/leaf.js';
import { opensslVerify, tempDir, tlsPlan, type TlsSpecInput } from '../helpers/tls.js';

const SPEC: TlsSpecInput = {
  name: 'lotls-k1',
  cidr: '10.150.20.0/24',
  sharedName: 'lotls-k1-sh',
  sharedCidr: '10.150.21.0/24',
  mirrors: [
    { name: 'lotls-kdock', url: 'https://registry-1.docker.io', registry: 'docker.io' },
    { name: 'lotls-kquay', url: 'https://quay.io', registry: 'quay.io' },
  ],
};

describe('key generation off the main thread, native signatures', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('signCertificate writes the bytes forge itself would (PKCS#1 v1.5 is deterministic)', async () => {
    const { key } = await generateRsaKey(2048);
    const make = (): forge.pki.Certificate => {
      const c = forge.pki.createCertificate();
      c.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
      c.serialNumber = '01';
      c.validity.notBefore = new Date(0);
      c.validity.notAfter = new Date(86_400_000);
      c.setSubject([{ name: 'commonName', value: 'x' }]);
      c.setIssuer([{ name: 'commonName', value: 'x' }]);
      return c;
    };
    const viaForge = make();
    viaForge.sign(key, forge.md.sha256.create());
    const viaNode = make();
    signCertificate(viaNode, key);
    expect(forge.pki.certificateToPem(viaNode)).toBe(forge.pki.certificateToPem(viaForge));
  });

  it('a new CA and its certificates: every key distinct, 0600, each certificate verifies against the CA', async () => {
    const plan = tlsPlan(t.dir, SPEC);
    expect(plan.tls.certificates.length).toBeGreaterThan(1);
    const m = await ensureTls(plan);
    expect(m?.caCreated).toBe(true);
    const pub = (pem: Buffer): string => createPublicKey(pem).export({ format: 'der', type: 'spki' }).toString('hex');
    const keys = new Set<string>([pub(readFileSync(plan.tls.caKeyPath))]);
    for (const c of plan.tls.certificates) {
      expect(m?.certificates[c.id]?.action).toBe('created');
      expect(statSync(c.keyPath).mode & 0o777).toBe(LEAF_KEY_MODE);
      keys.add(pub(readFileSync(c.keyPath)));
      // The certificate carries the public half of the key written next to it.
      expect(pub(readFileSync(c.certPath))).toBe(pub(readFileSync(c.keyPath)));
      expect(opensslVerify(plan.tls.caCertPath, c.certPath)).toContain('OK');
    }
    expect(keys.size).toBe(plan.tls.certificates.length + 1);
  });
});
