/**
 * `lo doctor`'s endpoint probes (issue 14) against real loopback servers: node:https with CAs, server and
 * client certificates the test makes with openssl, node:http for a path prefix, a closed port and a server
 * that never answers. No network call is mocked; nothing leaves 127.0.0.1.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planEndpointProbes } from '../../src/plan/endpointProbes.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { probeEndpoint } from '../../src/usecases/endpointProbe.js';
import { doctor, endpointProbeChecks, type Check } from '../../src/usecases/doctor.js';
import { makeTestCa, makeTestLeaf } from '../helpers/tls.js';

let dir: string;
const servers: Server[] = [];
const held: Socket[] = [];
const port = (s: Server): number => (s.address() as AddressInfo).port;
const listen = async <S extends Server>(s: S): Promise<S> => {
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return s;
};
const SECRET = 'Basic ' + Buffer.from('robot:s3cret-value').toString('base64');

const makeCa = (name: string) => makeTestCa(dir, name);
const makeLeaf = (ca: { crt: string; key: string }, name: string, ext: string) => makeTestLeaf(dir, ca, name, ext);

/** A registry's /v2/ that wants `Authorization: <SECRET>` (Basic challenge otherwise). */
function basicAuthRegistry(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers.authorization === SECRET) res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
  else res.writeHead(401, { 'www-authenticate': 'Basic realm="corp"' }).end();
}

let ports: Record<string, number>;
let caA: { crt: string; key: string };
let caB: { crt: string; key: string };
let clientCa: { crt: string; key: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lo-endpoint-probe-'));
  caA = makeCa('ca-a');
  caB = makeCa('ca-b');
  clientCa = makeCa('client-ca');
  const leafA = makeLeaf(caA, 'server-a', 'subjectAltName=IP:127.0.0.1');
  const leafB = makeLeaf(caB, 'server-b', 'subjectAltName=IP:127.0.0.1');
  makeLeaf(clientCa, 'client', 'extendedKeyUsage=clientAuth'); // client.crt / client.key, named by the specs
  const tls = (leaf: { crt: string; key: string }) => ({ cert: readFileSync(leaf.crt), key: readFileSync(leaf.key) });
  const auth = await listen(createHttpsServer(tls(leafA), basicAuthRegistry));
  const otherCa = await listen(createHttpsServer(tls(leafB), (_q, r) => r.writeHead(200).end()));
  const mtls = await listen(
    createHttpsServer({ ...tls(leafA), ca: readFileSync(clientCa.crt), requestCert: true, rejectUnauthorized: true }, (_q, r) =>
      r.writeHead(200).end(),
    ),
  );
  const bearer = await listen(
    createHttpsServer(tls(leafA), (_q, r) =>
      r.writeHead(401, { 'www-authenticate': 'Bearer realm="https://127.0.0.1:1/token",service="corp",scope="repository:x:pull"' }).end(),
    ),
  );
  // Repositories under /v2/docker-remote/ (Artifactory's layout); anything else is 404.
  const prefix = await listen(
    createHttpServer((q, r) => (q.url === '/v2/docker-remote/' ? r.writeHead(200).end() : r.writeHead(404).end())),
  );
  // Takes the connection and never answers.
  const silent = await listen(createTcpServer((sock) => held.push(sock)));
  const closed = await listen(createTcpServer());
  const closedPort = port(closed);
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  ports = {
    auth: port(auth),
    otherCa: port(otherCa),
    mtls: port(mtls),
    bearer: port(bearer),
    prefix: port(prefix),
    silent: port(silent),
    closed: closedPort,
  };
});
afterAll(async () => {
  for (const sock of held) sock.destroy();
  for (const s of servers) (s as { closeAllConnections?: () => void }).closeAllConnections?.();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  rmSync(dir, { recursive: true, force: true });
});

function planOf(hosts: string): Plan {
  const text = `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata: { name: probe }
spec:
  network: { name: probe, cidr: 10.140.93.0/24 }
  cluster: { domain: probe.test }
  registries:
    hosts:
${hosts}`;
  const spec = parseSpec(text, { file: join(dir, 'cluster.lok8s.yaml') });
  return planCluster(spec, { paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'caroot') } });
}
const byRegistry = (checks: Check[], registry: string): Check[] => checks.filter((c) => c.endpoint?.registry === registry);

describe('lo doctor asks every endpoint (issue 14)', () => {
  it('sends what containerd sends: CA, client certificate, header from the environment; judges each answer with a fix', async () => {
    const p = planOf(`      auth.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.auth}
            tls: { caFile: ca-a.crt }
            headers: { Authorization: { env: CORP_AUTH } }
          - url: https://127.0.0.1:${ports.auth}/v2
            tls: { caFile: ca-a.crt }
      mtls.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.mtls}
            tls: { caFile: ca-a.crt, certFile: client.crt, keyFile: client.key }
          - url: https://127.0.0.1:${ports.mtls}/v2
            tls: { caFile: ca-a.crt }
      other.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.otherCa}
            tls: { caFile: ca-a.crt }
          - url: https://127.0.0.1:${ports.otherCa}/v2
            tls: { insecureSkipVerify: true }
      prefix.corp.test:
        endpoints:
          - url: http://127.0.0.1:${ports.prefix}/v2/docker-remote
          - url: http://127.0.0.1:${ports.prefix}/v2/nothing-here
          - url: http://127.0.0.1:${ports.prefix}
      bearer.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.bearer}
            tls: { caFile: ca-a.crt }
      "*":
        endpoints:
          - url: http://127.0.0.1:${ports.closed}
`);
    const env = { CORP_AUTH: SECRET };
    const checks = await endpointProbeChecks(p, env);
    const shown = (cs: Check[]) =>
      cs.map((c) => [c.name, c.status, c.endpoint?.problem ?? null, c.endpoint?.httpStatus ?? c.endpoint?.errorCode]);

    expect(shown(byRegistry(checks, 'auth.corp.test'))).toEqual([
      ['endpoint auth.corp.test #1', 'ok', null, 200],
      ['endpoint auth.corp.test #2', 'warn', 'auth-required', 401],
    ]);
    expect(byRegistry(checks, 'auth.corp.test')[0]!.detail).toContain('with the Authorization header from $CORP_AUTH');
    expect(byRegistry(checks, 'auth.corp.test')[1]!.fix).toContain('headers: { Authorization: { env: MY_AUTH } }');

    const mtls = byRegistry(checks, 'mtls.corp.test');
    expect(shown(mtls).map((r) => r.slice(0, 3))).toEqual([
      ['endpoint mtls.corp.test #1', 'ok', null],
      ['endpoint mtls.corp.test #2', 'fail', 'client-certificate-required'],
    ]);
    expect(mtls[1]!.detail).toContain('requires a client certificate');
    expect(mtls[1]!.fix).toContain('spec.registries.hosts["mtls.corp.test"].endpoints[1].tls.certFile and keyFile');

    const other = byRegistry(checks, 'other.corp.test');
    expect(shown(other).map((r) => r.slice(0, 3))).toEqual([
      ['endpoint other.corp.test #1', 'fail', 'unknown-ca'],
      ['endpoint other.corp.test #2', 'ok', null],
    ]);
    expect(other[0]!.detail).toContain(`signed by a CA other than ${join(dir, 'ca-a.crt')}`);
    expect(other[0]!.fix).toBe(
      'give the endpoint\'s CA (the PEM that signed its certificate) as spec.registries.hosts["other.corp.test"].endpoints[0].tls.caFile',
    );

    // override_path: the prefix as written is the API root; without a path, /v2/.
    const prefix = byRegistry(checks, 'prefix.corp.test');
    expect(prefix.map((c) => c.endpoint!.probeUrl)).toEqual([
      `http://127.0.0.1:${ports.prefix}/v2/docker-remote/`,
      `http://127.0.0.1:${ports.prefix}/v2/nothing-here/`,
      `http://127.0.0.1:${ports.prefix}/v2/`,
    ]);
    expect(shown(prefix)).toEqual([
      ['endpoint prefix.corp.test #1', 'ok', null, 200],
      ['endpoint prefix.corp.test #2', 'ok', null, 404],
      ['endpoint prefix.corp.test #3', 'fail', 'not-a-registry', 404],
    ]);
    expect(prefix[1]!.detail).toContain('the path prefix has no API root of its own');

    expect(shown(byRegistry(checks, 'bearer.corp.test'))).toEqual([['endpoint bearer.corp.test #1', 'warn', 'auth-required', 401]]);
    expect(byRegistry(checks, 'bearer.corp.test')[0]!.detail).toContain('Bearer realm="https://127.0.0.1:1/token"');
    expect(byRegistry(checks, 'bearer.corp.test')[0]!.detail).not.toContain('scope=');

    expect(shown(byRegistry(checks, '*'))).toEqual([['endpoint * #1', 'fail', 'unreachable', 'ECONNREFUSED']]);
    expect(byRegistry(checks, '*')[0]!.fix).toContain(`127.0.0.1:${ports.closed}`);

    // The header value went on the wire (the first endpoint answered 200) but is nowhere in the checks.
    expect(JSON.stringify(checks)).not.toContain('s3cret');
    expect(JSON.stringify(checks)).not.toContain(SECRET.slice(6));
    expect(byRegistry(checks, 'auth.corp.test')[0]!.endpoint!.headers).toEqual(['Authorization: <from $CORP_AUTH>']);
  });

  it('a wrong header value is refused (Basic), a missing variable is not sent, a token-service 401 with a header is ok', async () => {
    const p = planOf(`      auth.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.auth}
            tls: { caFile: ca-a.crt }
            headers: { Authorization: { env: CORP_AUTH } }
      bearer.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.bearer}
            tls: { caFile: ca-a.crt }
            headers: { Authorization: { env: CORP_TOKEN } }
`);
    const wrong = await endpointProbeChecks(p, { CORP_AUTH: 'Basic bm9wZTpub3Bl', CORP_TOKEN: 'Bearer abc' });
    expect(wrong.map((c) => [c.status, c.endpoint?.problem ?? null])).toEqual([
      ['fail', 'auth-refused'],
      ['ok', null],
    ]);
    expect(wrong[0]!.fix).toContain('$CORP_AUTH');
    expect(JSON.stringify(wrong)).not.toContain('bm9wZTpub3Bl');
    const unset = await endpointProbeChecks(p, {});
    expect(unset.map((c) => [c.status, c.endpoint?.problem])).toEqual([
      ['fail', 'not-sent'],
      ['fail', 'not-sent'],
    ]);
    expect(unset[0]!.detail).toContain('$CORP_AUTH not set');
    expect(unset[0]!.fix).toContain('export CORP_AUTH=...');
  });

  it('a client certificate the endpoint does not accept, and an answer that never comes, are bounded failures', async () => {
    const other = makeLeaf(caB, 'client-b', 'extendedKeyUsage=clientAuth');
    writeFileSync(join(dir, 'client-b.crt'), readFileSync(other.crt));
    const p = planOf(`      mtls.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.mtls}
            tls: { caFile: ca-a.crt, certFile: client-b.crt, keyFile: client-b.key }
      silent.corp.test:
        endpoints:
          - url: http://127.0.0.1:${ports.silent}
`);
    const [mtls, silent] = planEndpointProbes(p);
    const refused = await endpointProbeChecks({ ...p, containerd: { ...p.containerd, endpoints: p.containerd.endpoints.slice(0, 1) } }, {});
    expect([refused[0]!.status, refused[0]!.endpoint?.problem], refused[0]!.detail).toEqual(['fail', 'client-certificate-refused']);
    expect(refused[0]!.detail).toContain(join(dir, 'client-b.crt'));
    expect(mtls!.client).toEqual({ certFile: join(dir, 'client-b.crt'), keyFile: join(dir, 'client-b.key') });
    const a = await probeEndpoint(silent!, {}, 300);
    expect(a).toMatchObject({ kind: 'error', code: 'ETIMEDOUT', message: 'no answer within 300 ms' });
  });

  it('doctor lists them after the entries, in the JSON shape docs/provision.md documents', async () => {
    const p = planOf(`      auth.corp.test:
        endpoints:
          - url: https://127.0.0.1:${ports.auth}
            tls: { caFile: ca-a.crt }
            headers: { Authorization: { env: CORP_AUTH } }
`);
    const r = await doctor({
      loadPlan: async () => p,
      docker: async () => ({ version: 'test', target: 'unix:///nowhere' }),
      kind: { version: async () => 'kind test', getClusters: async () => [] } as never,
      kubectl: () => ({ version: async () => 'kubectl test' }) as never,
      networkExists: async () => false,
      env: { CORP_AUTH: SECRET },
    });
    const names = r.checks.map((c) => c.name);
    expect(names.indexOf('endpoint auth.corp.test #1')).toBe(names.indexOf('endpoints auth.corp.test') + 1);
    expect(r.checks.find((c) => c.name === 'endpoint auth.corp.test #1')).toEqual({
      name: 'endpoint auth.corp.test #1',
      status: 'ok',
      detail: expect.stringMatching(
        new RegExp(`^https://127\\.0\\.0\\.1:${ports.auth}/v2/ answered 200 in \\d+ ms with the Authorization header from \\$CORP_AUTH$`),
      ),
      endpoint: {
        registry: 'auth.corp.test',
        position: 1,
        url: `https://127.0.0.1:${ports.auth}`,
        probeUrl: `https://127.0.0.1:${ports.auth}/v2/`,
        httpStatus: 200,
        ms: expect.any(Number),
        headers: ['Authorization: <from $CORP_AUTH>'],
      },
    });
  });
});
