import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CA_KEY_BITS,
  CA_PERMITTED_DNS,
  CA_PERMITTED_IP_RANGES,
  caScope,
  caUniqueName,
  loadCa,
  subjectKeyId,
} from '../../src/apply/tls/ca.js';
import { ensureTls } from '../../src/apply/tls/ensureTls.js';
import { certificateNames, issueLeaf as issueLeafUnchecked, LEAF_VALIDITY_DAYS, RENEW_BEFORE_DAYS } from '../../src/apply/tls/leaf.js';
import { TlsError } from '../../src/apply/tls/tlsError.js';
import { LoError } from '../../src/errors/loError.js';
import { BUILD_HOSTNAME, CACHE_HOSTNAME } from '../../src/spec/constants.js';
import { caScopeCheck } from '../../src/usecases/doctor.js';
import { makeMkcertStyleCa, openssl, opensslVerify, tempDir, tlsPlan, type TlsSpecInput } from '../helpers/tls.js';

const DAY = 86_400_000;
// The clock is injected; start at the real time so CAs made by openssl (valid from now) are valid too.
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000);
const SPEC: TlsSpecInput = {
  name: 'lotls-u1',
  cidr: '10.150.10.0/24',
  sharedName: 'lotls-u1-sh',
  sharedCidr: '10.150.11.0/24',
  mirrors: [
    { name: 'lotls-dock', url: 'https://registry-1.docker.io', registry: 'docker.io' },
    { name: 'lotls-quay', url: 'https://quay.io', registry: 'quay.io' },
  ],
};

function snapshot(paths: string[]): Array<{ path: string; bytes: string; mtimeMs: number; mode: number }> {
  return paths.map((p) => {
    const st = statSync(p);
    return { path: p, bytes: readFileSync(p, 'utf8'), mtimeMs: st.mtimeMs, mode: st.mode & 0o777 };
  });
}

function allTlsFiles(plan: ReturnType<typeof tlsPlan>): string[] {
  return [plan.tls.caCertPath, plan.tls.caKeyPath, ...plan.tls.certificates.flatMap((c) => [c.certPath, c.keyPath])];
}

describe('ensureTls: CA and certificates', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  const plan = tlsPlan(t.dir, SPEC);

  it('returns null when TLS is off and writes nothing', async () => {
    const off = tempDir();
    try {
      const p = tlsPlan(off.dir, { ...SPEC, tls: false });
      expect(await ensureTls(p, { now: T0 })).toBeNull();
      expect(existsSync(join(off.dir, 'caroot'))).toBe(false);
      expect(existsSync(join(off.dir, 'state'))).toBe(false);
    } finally {
      off.cleanup();
    }
  });

  it('creates an mkcert-style CA and one leaf (ECDSA P-256) per planned certificate that chain (Node and openssl)', async () => {
    const m = await ensureTls(plan, { now: T0, identity: 'tester@testhost' });
    expect(m).not.toBeNull();
    expect(m!.caCreated).toBe(true);
    expect(Object.keys(m!.certificates).sort()).toEqual(plan.tls.certificates.map((c) => c.id).sort());
    expect(Object.keys(m!.certificates)).toEqual(expect.arrayContaining(['project', 'shared-lotls-dock', 'shared-lotls-quay']));

    const caPem = readFileSync(plan.tls.caCertPath, 'utf8');
    expect(m!.caCertPem).toBe(caPem);
    const ca = forge.pki.certificateFromPem(caPem);
    expect((ca.publicKey as forge.pki.rsa.PublicKey).n.bitLength()).toBe(CA_KEY_BITS);
    expect(ca.subject.getField('O').value).toBe('mkcert development CA');
    expect(ca.subject.getField('OU').value).toBe('tester@testhost');
    expect(ca.subject.getField('CN').value).toBe('mkcert tester@testhost');
    const bc = ca.getExtension('basicConstraints') as { cA: boolean; pathLenConstraint: number; critical: boolean };
    expect(bc).toMatchObject({ cA: true, pathLenConstraint: 0, critical: true });
    expect(ca.getExtension('keyUsage')).toMatchObject({ keyCertSign: true, cRLSign: true });
    const years = (ca.validity.notAfter.getTime() - ca.validity.notBefore.getTime()) / (365.25 * DAY);
    expect(Math.round(years)).toBe(10);
    // openssl reads the same extensions
    const text = openssl(['x509', '-in', plan.tls.caCertPath, '-noout', '-text']);
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Certificate Sign, CRL Sign/);
    // user@host is not a PrintableString: Go's x509 (registry:2, containerd, dockerd) needs UTF8String
    const asn1 = openssl(['asn1parse', '-in', plan.tls.caCertPath]);
    expect(asn1).toMatch(/UTF8STRING\s+:tester@testhost/);
    expect(asn1).not.toMatch(/PRINTABLESTRING\s+:[^\n]*@/);
    // mkcert's file modes
    expect(statSync(plan.tls.caKeyPath).mode & 0o777).toBe(0o400);
    expect(statSync(plan.tls.caCertPath).mode & 0o777).toBe(0o644);
    expect(readFileSync(plan.tls.caKeyPath, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(m!.caFingerprint).toBe(
      openssl(['x509', '-in', plan.tls.caCertPath, '-noout', '-fingerprint', '-sha256'])
        .trim()
        .split('=')[1]!
        .replace(/:/g, '')
        .toLowerCase(),
    );

    for (const c of plan.tls.certificates) {
      const got = m!.certificates[c.id]!;
      expect(got).toEqual({
        id: c.id,
        certPath: c.certPath,
        keyPath: c.keyPath,
        fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
        action: 'created',
      });
      const leaf = new X509Certificate(readFileSync(c.certPath, 'utf8'));
      const caX509 = new X509Certificate(caPem);
      expect(leaf.checkIssued(caX509) && leaf.verify(caX509.publicKey)).toBe(true);
      // ECDSA P-256 keys (mkcert -ecdsa), signed by the RSA CA
      expect(leaf.publicKey.asymmetricKeyType).toBe('ec');
      expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(openssl(['x509', '-in', c.certPath, '-noout', '-text'])).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
      expect(openssl(['x509', '-in', c.certPath, '-noout', '-ext', 'keyUsage'])).toMatch(/critical\s+Digital Signature\s*$/);
      // subject key id = SHA-1 of the EC point (openssl computes the same for `-ext subjectKeyIdentifier`)
      const ski = openssl(['x509', '-in', c.certPath, '-noout', '-ext', 'subjectKeyIdentifier']);
      const point = createPublicKey(readFileSync(c.keyPath)).export({ format: 'der', type: 'spki' }).subarray(-65);
      const sha1 = execFileSync('openssl', ['dgst', '-sha1', '-hex'], { input: point }).toString().trim().split(' ').pop()!;
      expect(
        ski
          .replace(/[^0-9A-F]/gi, '')
          .toLowerCase()
          .endsWith(sha1),
      ).toBe(true);
      expect(opensslVerify(plan.tls.caCertPath, c.certPath)).toMatch(/: OK/);
      // SANs equal the plan's names exactly, IPs as IP SANs
      expect(certificateNames(leaf)).toEqual([...c.names].sort());
      const sanText = openssl(['x509', '-in', c.certPath, '-noout', '-ext', 'subjectAltName']);
      for (const n of c.names) expect(sanText).toContain(/^\d+\.\d+\.\d+\.\d+$/.test(n) ? `IP Address:${n}` : `DNS:${n}`);
      expect(openssl(['x509', '-in', c.certPath, '-noout', '-ext', 'extendedKeyUsage'])).toMatch(/TLS Web Server Authentication/);
      const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / DAY;
      expect(days).toBe(LEAF_VALIDITY_DAYS);
      expect(days).toBeLessThan(825);
      expect(statSync(c.keyPath).mode & 0o777).toBe(0o600);
      expect(statSync(c.certPath).mode & 0o777).toBe(0o644);
      expect(openssl(['asn1parse', '-in', c.certPath])).not.toMatch(/PRINTABLESTRING\s+:[^\n]*@/);
      // key matches certificate (openssl's view)
      const certPub = openssl(['x509', '-in', c.certPath, '-noout', '-pubkey']);
      const keyPub = openssl(['pkey', '-in', c.keyPath, '-pubout']);
      expect(keyPub).toBe(certPub);
      expect(leaf.checkPrivateKey(createPrivateKey(readFileSync(c.keyPath)))).toBe(true);
    }
    // the project leaf covers only the project's registries: their IPs and lok8s.local/lok8s.cache
    const project = plan.tls.certificates.find((c) => c.id === 'project')!;
    expect(certificateNames(readFileSync(project.certPath, 'utf8'))).toEqual([
      '10.150.10.101',
      '10.150.10.102',
      'lok8s.cache',
      'lok8s.local',
    ]);
    // no leaf names a mirrored registry: a leaked key cannot impersonate docker.io or quay.io
    for (const c of plan.tls.certificates) {
      const san = openssl(['x509', '-in', c.certPath, '-noout', '-ext', 'subjectAltName']);
      expect(san).not.toMatch(/docker\.io|quay\.io/);
    }
    // the CA is name-constrained (critical): private IPv4 ranges and lo's own names only
    const nc = openssl(['x509', '-in', plan.tls.caCertPath, '-noout', '-ext', 'nameConstraints']);
    expect(nc).toMatch(/X509v3 Name Constraints: critical/);
    expect(nc.replace(/\s+/g, ' ')).toContain(
      'Permitted: IP:10.0.0.0/255.0.0.0 IP:172.16.0.0/255.240.0.0 IP:192.168.0.0/255.255.0.0 DNS:lok8s.local DNS:lok8s.cache',
    );
    expect(nc).not.toMatch(/Excluded/);
    expect(caScope(ca)).toEqual({ ipRanges: [...CA_PERMITTED_IP_RANGES], dns: [...CA_PERMITTED_DNS], other: false });
    expect([...CA_PERMITTED_DNS]).toEqual([BUILD_HOSTNAME, CACHE_HOSTNAME]);
    // the CA copy in the containerd certs.d tree is applyCertsDir's (one writer, one action), not ensureTls's
    expect(existsSync(plan.containerd.caFile!)).toBe(false);
  });

  it('a second run changes nothing: same bytes, same mtimes, action unchanged', async () => {
    const before = snapshot(allTlsFiles(plan));
    await new Promise((r) => setTimeout(r, 20));
    const m = await ensureTls(plan, { now: new Date(T0.getTime() + 60 * DAY) });
    expect(m!.caCreated).toBe(false);
    expect(Object.values(m!.certificates).map((c) => c.action)).toEqual(plan.tls.certificates.map(() => 'unchanged'));
    expect(snapshot(allTlsFiles(plan))).toEqual(before);
  });

  it('a changed mirror list creates the new mirror certificate and leaves the others to the byte', async () => {
    const first = await ensureTls(plan, { now: T0 });
    const changed = tlsPlan(t.dir, {
      ...SPEC,
      mirrors: [...SPEC.mirrors!, { name: 'lotls-ghcr', url: 'https://ghcr.io', registry: 'ghcr.io' }],
    });
    const keep = ['project', 'shared-lotls-dock'].map((id) => changed.tls.certificates.find((c) => c.id === id)!.certPath);
    const before = snapshot(keep);
    const m = await ensureTls(changed, { now: T0 });
    expect(m!.certificates.project!.action).toBe('unchanged');
    expect(m!.certificates.project!.fingerprint).toBe(first!.certificates.project!.fingerprint);
    expect(m!.certificates['shared-lotls-ghcr']!.action).toBe('created');
    expect(m!.certificates['shared-lotls-dock']!.action).toBe('unchanged');
    expect(snapshot(keep)).toEqual(before);
    const ghcr = changed.tls.certificates.find((c) => c.id === 'shared-lotls-ghcr')!;
    expect(certificateNames(readFileSync(ghcr.certPath, 'utf8'))).toEqual([ghcr.names[0]]);
  });

  it('a leaf issued with the old names (a mirrored registry name) is re-issued once, then kept to the byte', async () => {
    const ca = (await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }, T0))!;
    // What lo before this change wrote: the shared mirror's IP and its registry name, from this very CA.
    const dock = plan.tls.certificates.find((c) => c.id === 'shared-lotls-dock')!;
    const old = await issueLeafUnchecked(
      { id: dock.id, certPath: dock.certPath, keyPath: dock.keyPath, names: [...dock.names, 'docker.io'] },
      ca,
      T0,
    );
    writeFileSync(dock.certPath, old.certPem);
    writeFileSync(dock.keyPath, old.keyPem);
    // Under the constrained CA that old leaf no longer verifies for anyone (openssl enforces the constraints).
    expect(() => opensslVerify(plan.tls.caCertPath, dock.certPath)).toThrow(/permitted subtree violation|name constraints/i);
    const m = await ensureTls(plan, { now: T0 });
    expect(m!.certificates[dock.id]!.action).toBe('reissued');
    expect(certificateNames(readFileSync(dock.certPath, 'utf8'))).toEqual(dock.names);
    expect(opensslVerify(plan.tls.caCertPath, dock.certPath)).toMatch(/: OK/);
    const after = snapshot(allTlsFiles(plan));
    const again = await ensureTls(plan, { now: T0 });
    expect(Object.values(again!.certificates).every((c) => c.action === 'unchanged')).toBe(true);
    expect(snapshot(allTlsFiles(plan))).toEqual(after);
  });

  it('a constrained CA refuses (exit 2, naming the CA) to certify an address outside its ranges', async () => {
    const pub = tlsPlan(t.dir, { ...SPEC, name: 'lotls-pub', cidr: '203.0.113.0/24', sharedEnabled: false, mirrors: [] });
    const err = await ensureTls(pub, { now: T0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsError);
    expect((err as TlsError).exitCode).toBe(2);
    expect((err as TlsError).message).toContain('203.0.113.101');
    expect((err as TlsError).message).toContain(plan.tls.caCertPath);
    expect((err as TlsError).hint).toMatch(/spec\.network\.cidr/);
    expect(existsSync(pub.tls.certificates[0]!.certPath)).toBe(false);
  });

  it('re-issues a certificate that expires within 30 days, and only then', async () => {
    const leaf = new X509Certificate(readFileSync(plan.tls.certificates[0]!.certPath, 'utf8'));
    const notAfter = Date.parse(leaf.validTo);
    const justBefore = new Date(notAfter - (RENEW_BEFORE_DAYS + 1) * DAY);
    const m1 = await ensureTls(plan, { now: justBefore });
    expect(Object.values(m1!.certificates).every((c) => c.action === 'unchanged')).toBe(true);
    const inWindow = new Date(notAfter - (RENEW_BEFORE_DAYS - 1) * DAY);
    const m2 = await ensureTls(plan, { now: inWindow });
    expect(m2!.certificates.project!.action).toBe('reissued');
    const renewed = new X509Certificate(readFileSync(plan.tls.certificates[0]!.certPath, 'utf8'));
    expect(Date.parse(renewed.validTo)).toBe(inWindow.getTime() - (inWindow.getTime() % 1000) + LEAF_VALIDITY_DAYS * DAY);
  });

  it('re-issues every certificate when the CA changes and hands back the new CA', async () => {
    const before = await ensureTls(plan, { now: T0 });
    // Replace the CA with another one (as if the user pointed CAROOT at another mkcert CA).
    rmSync(plan.tls.caCertPath);
    rmSync(plan.tls.caKeyPath, { force: true });
    makeMkcertStyleCa(plan.tls.caRoot);
    const m = await ensureTls(plan, { now: new Date() });
    expect(m!.caCreated).toBe(false);
    expect(m!.caFingerprint).not.toBe(before!.caFingerprint);
    for (const c of plan.tls.certificates) {
      expect(m!.certificates[c.id]!.action).toBe('reissued');
      expect(opensslVerify(plan.tls.caCertPath, c.certPath)).toMatch(/: OK/);
    }
    expect(m!.caCertPem).toBe(readFileSync(plan.tls.caCertPath, 'utf8'));
    // The reused (mkcert-style) CA is left as it is, unconstrained, and lo doctor says so with the way out.
    const caPem = readFileSync(plan.tls.caCertPath, 'utf8');
    expect(caScope(forge.pki.certificateFromPem(caPem))).toBeNull();
    const check = caScopeCheck(caPem, plan.tls.caCertPath, plan.tls.caKeyPath);
    expect(check).toMatchObject({ name: 'ca-scope', status: 'warn' });
    expect(check.detail).toContain('no name constraints');
    expect(check.fix).toContain('lo trust --uninstall --yes');
    expect(check.fix).toContain(plan.tls.caRoot);
  });

  it('lo doctor finds a CA that lo created constrained', async () => {
    const fresh = tempDir();
    try {
      const p = tlsPlan(fresh.dir, SPEC);
      const m = await ensureTls(p, { now: T0 });
      const check = caScopeCheck(m!.caCertPem, p.tls.caCertPath, p.tls.caKeyPath);
      expect(check).toEqual({
        name: 'ca-scope',
        status: 'ok',
        detail: 'the CA may certify only 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, lok8s.local, lok8s.cache',
      });
      expect(caScopeCheck('not a pem', p.tls.caCertPath, p.tls.caKeyPath).status).toBe('fail');
    } finally {
      fresh.cleanup();
    }
  });

  it('an unreadable certificate (a directory in its place) is a typed error naming it, with the way out', async () => {
    const c = plan.tls.certificates[0]!;
    await ensureTls(plan, { now: new Date() });
    const saved = readFileSync(c.certPath);
    rmSync(c.certPath);
    mkdirSync(c.certPath);
    try {
      const err = await ensureTls(plan, { now: new Date() }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TlsError);
      expect(err).toMatchObject({ code: 'E_TLS', file: c.certPath, hint: `remove ${c.certPath} so lo re-issues it` });
      expect((err as TlsError).message).toContain(`cannot read ${c.certPath}`);
    } finally {
      rmSync(c.certPath, { recursive: true });
      writeFileSync(c.certPath, saved);
    }
  });

  it('re-issues when a key no longer matches its certificate (e.g. a torn write) and never prints keys', async () => {
    const c = plan.tls.certificates[0]!;
    const other = plan.tls.certificates[1]!;
    copyFileSync(other.keyPath, c.keyPath);
    const m = await ensureTls(plan, { now: new Date() });
    expect(m!.certificates[c.id]!.action).toBe('reissued');
    expect(JSON.stringify(m)).not.toMatch(/PRIVATE KEY/);
    expect(opensslVerify(plan.tls.caCertPath, c.certPath)).toMatch(/: OK/);
  });

  it('keeps, to the byte, a valid RSA certificate an earlier lo wrote (keys became ECDSA; nothing re-issued for that)', async () => {
    const ca = (await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }))!;
    const c = plan.tls.certificates[0]!;
    const rsa = await issueLeafUnchecked(
      { id: c.id, certPath: c.certPath, keyPath: c.keyPath, names: c.names },
      ca,
      new Date(),
      async () => {
        const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        return {
          keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
          spkiDer: publicKey.export({ format: 'der', type: 'spki' }),
        };
      },
    );
    writeFileSync(c.keyPath, rsa.keyPem, { mode: 0o600 });
    writeFileSync(c.certPath, rsa.certPem);
    expect(new X509Certificate(rsa.certPem).publicKey.asymmetricKeyType).toBe('rsa');
    expect(opensslVerify(plan.tls.caCertPath, c.certPath)).toMatch(/: OK/);
    const before = snapshot([c.certPath, c.keyPath]);
    const m = await ensureTls(plan, { now: new Date() });
    expect(m!.certificates[c.id]).toMatchObject({ action: 'unchanged', fingerprint: rsa.fingerprint });
    expect(snapshot([c.certPath, c.keyPath])).toEqual(before);
  });
});

describe('an existing mkcert-layout CA is reused as it is', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('signs with the existing CA and never rewrites rootCA.pem or rootCA-key.pem', async () => {
    const plan = tlsPlan(t.dir, SPEC);
    mkdirSync(plan.tls.caRoot, { recursive: true });
    const made = makeMkcertStyleCa(plan.tls.caRoot);
    const before = snapshot([made.certPath, made.keyPath]);
    const m = await ensureTls(plan, { now: new Date() });
    expect(m!.caCreated).toBe(false);
    expect(m!.caCertPem).toBe(before[0]!.bytes);
    expect(snapshot([made.certPath, made.keyPath])).toEqual(before);
    for (const c of plan.tls.certificates) expect(opensslVerify(made.certPath, c.certPath)).toMatch(/: OK/);
    // the authority key identifier of the leaf is the CA's subject key identifier
    const caSki = openssl(['x509', '-in', made.certPath, '-noout', '-ext', 'subjectKeyIdentifier']).split('\n')[1]!.trim();
    expect(openssl(['x509', '-in', plan.tls.certificates[0]!.certPath, '-noout', '-ext', 'authorityKeyIdentifier'])).toContain(caSki);
    // mkcert's trust-store name uses the CA's serial in decimal
    const ca = (await loadCa({ caRoot: plan.tls.caRoot, certPath: made.certPath, keyPath: made.keyPath }))!;
    const serialHex = openssl(['x509', '-in', made.certPath, '-noout', '-serial']).trim().split('=')[1]!;
    expect(caUniqueName(ca.cert)).toBe(`mkcert development CA ${BigInt(`0x${serialHex}`).toString(10)}`);
  });
});

describe('bad CA files: a typed error naming the file, nothing overwritten', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  let n = 0;
  /** A fresh project whose CAROOT holds what `setup` puts there. */
  function setupCase(setup: (caRoot: string) => void) {
    const root = join(t.dir, `case${n++}`);
    const plan = tlsPlan(root, SPEC);
    mkdirSync(plan.tls.caRoot, { recursive: true });
    setup(plan.tls.caRoot);
    return plan;
  }
  async function expectTlsError(plan: ReturnType<typeof tlsPlan>, file: string, message: RegExp, now?: Date) {
    const caFiles = [plan.tls.caCertPath, plan.tls.caKeyPath].filter((p) => existsSync(p) && statSync(p).isFile());
    const before = snapshot(caFiles);
    const err = await ensureTls(plan, { now: now ?? new Date() }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TlsError);
    expect(err).toBeInstanceOf(LoError);
    const e = err as TlsError;
    expect(e.code).toBe('E_TLS');
    expect(e.file).toBe(file);
    expect(e.message).toContain(file);
    expect(e.message).toMatch(message);
    expect(e.hint).toBeTruthy();
    expect(snapshot(caFiles)).toEqual(before);
    // nothing downstream was written either
    for (const c of plan.tls.certificates) expect(existsSync(c.certPath)).toBe(false);
    expect(existsSync(plan.containerd.caFile!)).toBe(false);
    return e;
  }

  it('only the certificate present', async () => {
    const plan = setupCase((d) => {
      makeMkcertStyleCa(d);
      rmSync(join(d, 'rootCA-key.pem'));
    });
    await expectTlsError(plan, plan.tls.caKeyPath, /incomplete CA.*rootCA\.pem exists but .*rootCA-key\.pem is missing/);
    expect(existsSync(plan.tls.caKeyPath)).toBe(false);
  });

  it('only the key present', async () => {
    const plan = setupCase((d) => {
      makeMkcertStyleCa(d);
      rmSync(join(d, 'rootCA.pem'));
    });
    await expectTlsError(plan, plan.tls.caCertPath, /incomplete CA/);
    expect(existsSync(plan.tls.caCertPath)).toBe(false);
  });

  it('key does not match the certificate', async () => {
    const plan = setupCase((d) => {
      const other = join(d, 'other');
      mkdirSync(other);
      makeMkcertStyleCa(other);
      makeMkcertStyleCa(d);
      chmodSync(join(d, 'rootCA-key.pem'), 0o600);
      copyFileSync(join(other, 'rootCA-key.pem'), join(d, 'rootCA-key.pem'));
    });
    await expectTlsError(plan, plan.tls.caKeyPath, /does not match/);
  });

  it('expired CA', async () => {
    const plan = setupCase((d) => makeMkcertStyleCa(d, 30));
    const e = await expectTlsError(plan, plan.tls.caCertPath, /expired on/, new Date(Date.now() + 31 * DAY));
    expect(e.hint).toContain(plan.tls.caRoot);
  });

  it('not a CA (basicConstraints CA:FALSE)', async () => {
    const plan = setupCase((d) => {
      openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(d, 'rootCA-key.pem')]);
      openssl([
        'req',
        '-x509',
        '-new',
        '-key',
        join(d, 'rootCA-key.pem'),
        '-days',
        '30',
        '-out',
        join(d, 'rootCA.pem'),
        '-subj',
        '/CN=not a ca',
        '-addext',
        'basicConstraints=critical,CA:FALSE',
      ]);
    });
    await expectTlsError(plan, plan.tls.caCertPath, /is not a CA certificate/);
  });

  it('certificate file that is not PEM', async () => {
    const plan = setupCase((d) => {
      makeMkcertStyleCa(d);
      writeFileSync(join(d, 'rootCA.pem'), 'hello\n');
    });
    await expectTlsError(plan, plan.tls.caCertPath, /not a usable PEM certificate/);
  });

  it('key file that is not a key', async () => {
    const plan = setupCase((d) => {
      makeMkcertStyleCa(d);
      chmodSync(join(d, 'rootCA-key.pem'), 0o600);
      writeFileSync(join(d, 'rootCA-key.pem'), readFileSync(join(d, 'rootCA.pem')));
    });
    await expectTlsError(plan, plan.tls.caKeyPath, /not an unencrypted RSA private key/);
  });

  it('unreadable certificate file (a directory in its place)', async () => {
    const plan = setupCase((d) => {
      makeMkcertStyleCa(d);
      rmSync(join(d, 'rootCA.pem'));
      mkdirSync(join(d, 'rootCA.pem'));
    });
    const e = await expectTlsError(plan, plan.tls.caCertPath, /cannot read/);
    expect(e.hint).toBe(`make ${plan.tls.caCertPath} a readable PEM file`);
  });
});

describe('permissions as an unprivileged user (setpriv to nobody)', () => {
  // Root reads anything, so the EACCES cases run in a child process as uid 65534.
  const t = tempDir();
  const script = join(t.dir, 'run.cjs');
  beforeAll(async () => {
    chmodSync(t.dir, 0o755);
    // Bundle the real CA code into one CommonJS file the unprivileged child can load.
    const { build } = await import('esbuild');
    await build({
      entryPoints: [join(process.cwd(), 'src/apply/tls/ca.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: join(t.dir, 'ca.cjs'),
      logLevel: 'silent',
    });
    writeFileSync(
      script,
      `const { loadOrCreateCa } = require('./ca.cjs');
const [caRoot] = process.argv.slice(2);
loadOrCreateCa({ caRoot, certPath: caRoot + '/rootCA.pem', keyPath: caRoot + '/rootCA-key.pem' }).then(
  () => console.log(JSON.stringify({ ok: true })),
  (e) => console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, file: e.file, message: e.message, hint: e.hint })),
);
`,
    );
  });
  afterAll(() => t.cleanup());
  const asNobody = (caRoot: string): { ok: boolean; name?: string; code?: string; file?: string; message?: string; hint?: string } => {
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, caRoot], {
      encoding: 'utf8',
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  };

  it('an unwritable CAROOT is explained (which dir, $CAROOT or permissions)', () => {
    const caRoot = join(t.dir, 'root-owned');
    mkdirSync(caRoot, { mode: 0o755 });
    chmodSync(caRoot, 0o755);
    const r = asNobody(caRoot);
    expect(r).toMatchObject({ ok: false, name: 'TlsError', code: 'E_TLS', file: caRoot });
    expect(r.message).toContain(`cannot create the CA in ${caRoot}`);
    expect(r.hint).toMatch(/CAROOT/);
    expect(r.hint).toMatch(/chown/);
    expect(existsSync(join(caRoot, 'rootCA.pem'))).toBe(false);
  });

  it('an unreadable CA key (mkcert 0400, another owner) names the file', () => {
    const caRoot = join(t.dir, 'unreadable');
    mkdirSync(caRoot, { mode: 0o755 });
    chmodSync(caRoot, 0o755);
    makeMkcertStyleCa(caRoot);
    const before = snapshot([join(caRoot, 'rootCA.pem'), join(caRoot, 'rootCA-key.pem')]);
    const r = asNobody(caRoot);
    expect(r).toMatchObject({ ok: false, name: 'TlsError', code: 'E_TLS', file: join(caRoot, 'rootCA-key.pem') });
    expect(r.message).toMatch(/cannot read .*rootCA-key\.pem/);
    expect(r.hint).toMatch(/^give your user read access to .*rootCA-key\.pem \(mkcert writes it for its owner only\)/);
    expect(snapshot([join(caRoot, 'rootCA.pem'), join(caRoot, 'rootCA-key.pem')])).toEqual(before);
  });
});

describe('concurrent runs (two `lo registry up` at once)', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it("create one CA and one shared certificate, never a certificate paired with another run's key", async () => {
    // Two projects sharing the per-user state dir, CAROOT and the same shared mirrors.
    const a = tlsPlan(t.dir, { ...SPEC, name: 'lotls-ca', cidr: '10.150.12.0/24' });
    const b = tlsPlan(t.dir, { ...SPEC, name: 'lotls-cb', cidr: '10.150.13.0/24' });
    const results = await Promise.all([ensureTls(a), ensureTls(b), ensureTls(a), ensureTls(b)]);
    expect(results.filter((r) => r!.caCreated)).toHaveLength(1);
    expect(new Set(results.map((r) => r!.caFingerprint)).size).toBe(1);
    const shared = a.tls.certificates.find((c) => c.id === 'shared-lotls-dock')!;
    expect(b.tls.certificates.find((c) => c.id === 'shared-lotls-dock')!.certPath).toBe(shared.certPath);
    // Every run reports the certificate that is on disk now, and it matches its key.
    const onDisk = readFileSync(shared.certPath, 'utf8');
    expect(new Set(results.map((r) => r!.certificates['shared-lotls-dock']!.fingerprint)).size).toBe(1);
    expect(results.filter((r) => r!.certificates['shared-lotls-dock']!.action === 'created')).toHaveLength(1);
    expect(openssl(['x509', '-in', shared.certPath, '-noout', '-pubkey'])).toBe(openssl(['pkey', '-in', shared.keyPath, '-pubout']));
    expect(opensslVerify(a.tls.caCertPath, shared.certPath)).toMatch(/: OK/);
    expect(certificateNames(onDisk)).toEqual([...shared.names].sort());
    // no lock directories or temp files left behind
    const leftovers = execFileSync('find', [t.dir, '-name', '*.lock', '-o', '-name', '*.tmp'], { encoding: 'utf8' }).trim();
    expect(leftovers).toBe('');
  });
});

describe('subjectKeyId', () => {
  it('is the SHA-1 of the EC point also when the point reads as DER (04 3f …, about one key in 256)', () => {
    // Find such a key (bounded: the chance per key is 1/256, 20,000 tries fail with probability ~1e-34).
    let spki: Buffer | null = null;
    for (let i = 0; i < 20_000 && !spki; i++) {
      const der = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
      if (der[der.length - 64] === 0x3f) spki = der;
    }
    expect(spki).not.toBeNull();
    const point = spki!.subarray(-65);
    expect(point[0]).toBe(0x04);
    const want = execFileSync('openssl', ['dgst', '-sha1', '-hex'], { input: point }).toString().trim().split(' ').pop()!;
    expect(Buffer.from(subjectKeyId(spki!), 'binary').toString('hex')).toBe(want);
  });
});
