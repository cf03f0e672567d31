import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { specYaml as dockerSpecYaml } from './docker.js';

export interface TlsSpecInput {
  /** Project name = network name (<= 15 chars). */
  name: string;
  /** /24 of the project network, inside 10.150.0.0/16. */
  cidr: string;
  sharedName?: string;
  sharedCidr?: string;
  mirrors?: Array<{ name: string; url: string; registry?: string }>;
  sharedEnabled?: boolean;
  tls?: boolean;
}

/** The registry helpers' spec writer with TLS on by default and a shared network in the TLS subnet block. */
export function specYaml(s: TlsSpecInput): string {
  return dockerSpecYaml({
    ...s,
    tls: s.tls ?? true,
    sharedName: s.sharedName ?? `${s.name}-sh`.slice(0, 15),
    sharedCidr: s.sharedCidr ?? '10.150.200.0/24',
  });
}

/** A real plan from a real spec text, with lo's state and CA directories under `root`. */
export function tlsPlan(root: string, s: TlsSpecInput, extraLabels?: Record<string, string>): Plan {
  const spec = parseSpec(specYaml(s), { file: join(root, 'cluster.lok8s.yaml') });
  return planCluster(spec, {
    paths: { stateDir: join(root, 'state'), caRoot: join(root, 'caroot') },
    ...(extraLabels ? { extraLabels } : {}),
  });
}

export function tempDir(prefix = 'lotls-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `openssl verify -CAfile ca leaf`; returns stdout or throws with openssl's message. */
export function opensslVerify(caFile: string, certFile: string): string {
  return execFileSync('openssl', ['verify', '-CAfile', caFile, certFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Makes a CA the way mkcert does (RSA 3072, CA:TRUE pathlen:0, keyCertSign, PKCS#8 key 0400) with the
 * openssl binary, in `caRoot`, so tests can check lo reuses a CA it did not create.
 */
export function makeMkcertStyleCa(caRoot: string, days = 3650): { certPath: string; keyPath: string } {
  const certPath = join(caRoot, 'rootCA.pem');
  const keyPath = join(caRoot, 'rootCA-key.pem');
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072', '-out', keyPath]);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyPath,
    '-sha256',
    '-days',
    String(days),
    '-out',
    certPath,
    '-subj',
    '/O=mkcert development CA/OU=tester@testhost/CN=mkcert tester@testhost',
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign',
  ]);
  execFileSync('chmod', ['0400', keyPath]);
  return { certPath, keyPath };
}

/** HTTPS GET from Node trusting only `ca` (never rejectUnauthorized: false). `resolveTo` maps any host name to this IP. */
export function httpsGet(
  url: string,
  opts: { ca?: string; resolveTo?: string; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  const ip = opts.resolveTo;
  const lookup: LookupFunction | undefined = ip
    ? (_host, o, cb) => (o.all ? cb(null, [{ address: ip, family: 4 }]) : cb(null, ip, 4))
    : undefined;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(lookup ? { lookup } : {}),
        timeout: opts.timeoutMs ?? 5000,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 5000} ms: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** A small EC P-256 CA of a test's own (`<dir>/<name>.crt` and `.key`), valid two days. */
export function makeTestCa(dir: string, name: string): { crt: string; key: string } {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    crt,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  return { crt, key };
}

/** A leaf `ca` signs (`<dir>/<name>.crt` and `.key`) with the extension lines `ext` (e.g. `subjectAltName=IP:127.0.0.1`). */
export function makeTestLeaf(dir: string, ca: { crt: string; key: string }, name: string, ext: string): { crt: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const crt = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `${ext}\n`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-out', crt, '-days', '2', '-extfile', extFile]);
  return { crt, key };
}
