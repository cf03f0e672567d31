import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { ConfigError, ExitCode, type ConfigIssue } from '../../src/errors/loError.js';

/**
 * Table of malformed specs. Each case names the YAML path, line and message fragment the ConfigError must
 * carry; every issue of every case must also name the file and say how to fix it.
 */
interface BadCase {
  name: string;
  text: string;
  path: string;
  line: number;
  message: RegExp;
  /** Directory domain (clusters/<domain>/) the file was found under. */
  domain?: string;
}

const FILE = '/specs/clusters/test/cluster.lok8s.yaml';

/** A valid head (lines 1-5) for a project on a custom domain; cases append `spec:` children from line 6. */
const HEAD = `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: hb2
spec:
`;
const NET = `  cluster:
    domain: hb2.example.test
  network:
    name: hb2
    cidr: 10.126.2.0/24
`; // lines 6-10

function mirrors(n: number, shared: boolean): string {
  const items = Array.from({ length: n }, (_, i) => `      - name: m${i}\n        url: https://r${i}.example.test\n`).join('');
  return `${HEAD}${NET}  registries:\n    shared:\n      enabled: ${shared}\n    mirrors:\n${items}`;
}

const CASES: BadCase[] = [
  // --- unknown fields
  { name: 'unknown top-level field', text: `${HEAD}${NET}extra: 1\n`, path: 'extra', line: 11, message: /unknown field "extra"/ },
  {
    name: 'unknown nested field',
    text: `${HEAD}${NET}  nodes:\n    cpus: 4\n`,
    path: 'spec.nodes.cpus',
    line: 12,
    message: /unknown field "cpus"/,
  },
  {
    name: 'unknown field inside a mirror',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: https://x.example.test\n        mirrorUrl: https://y\n`,
    path: 'spec.registries.mirrors[0].mirrorUrl',
    line: 15,
    message: /unknown field "mirrorUrl"/,
  },
  {
    name: 'misspelt section suggests the right one',
    text: `${HEAD}${NET}  registry:\n    tls: true\n`,
    path: 'spec.registry',
    line: 11,
    message: /unknown field "registry"/,
  },
  {
    name: 'unknown field under metadata',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: hb2\n  labels: {}\n`,
    path: 'metadata.labels',
    line: 5,
    message: /unknown field "labels"/,
  },
  // --- wrong types
  {
    name: 'string where an integer belongs',
    text: `${HEAD}${NET}  nodes:\n    workers: "3"\n`,
    path: 'spec.nodes.workers',
    line: 12,
    message: /must be an integer, got string "3"/,
  },
  {
    name: 'string where a boolean belongs',
    text: `${HEAD}${NET}  registries:\n    tls: "yes"\n`,
    path: 'spec.registries.tls',
    line: 12,
    message: /must be true or false/,
  },
  {
    name: 'mapping where a list belongs',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      name: io-x\n`,
    path: 'spec.registries.mirrors',
    line: 12,
    message: /must be a list/,
  },
  {
    name: 'number where a string belongs',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: 42\n`,
    path: 'metadata.name',
    line: 4,
    message: /must be a string/,
  },
  { name: 'scalar where a mapping belongs', text: `${HEAD}${NET}  nodes: 3\n`, path: 'spec.nodes', line: 11, message: /must be a mapping/ },
  {
    name: 'protocol not in the enum',
    text: `${HEAD}${NET}  nodes:\n    hostPorts:\n      - containerPort: 80\n        hostPort: 8080\n        protocol: HTTP\n`,
    path: 'spec.nodes.hostPorts[0].protocol',
    line: 15,
    message: /"HTTP" is not one of TCP, UDP, SCTP/,
  },
  // --- CIDRs
  {
    name: 'CIDR with an octet > 255',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2\n    cidr: 10.300.2.0/24\n`,
    path: 'spec.network.cidr',
    line: 10,
    message: /is not an IPv4 CIDR/,
  },
  {
    name: 'CIDR that is a word',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2\n    cidr: banana\n`,
    path: 'spec.network.cidr',
    line: 10,
    message: /"banana" is not an IPv4 CIDR/,
  },
  {
    name: 'CIDR without prefix',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2\n    cidr: 10.126.2.0\n`,
    path: 'spec.network.cidr',
    line: 10,
    message: /is not an IPv4 CIDR/,
  },
  {
    name: 'CIDR not network-aligned',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2\n    cidr: 10.126.2.5/24\n`,
    path: 'spec.network.cidr',
    line: 10,
    message: /host bits set; the network address is 10\.126\.2\.0\/24/,
  },
  {
    name: 'project /16 where /24 is needed',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2\n    cidr: 10.126.0.0/16\n`,
    path: 'spec.network.cidr',
    line: 10,
    message: /is a \/16; registry addresses need a \/24/,
  },
  {
    name: 'project /25 where /24 is needed',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2\n    cidr: 10.126.2.0/25\n`,
    path: 'spec.network.cidr',
    line: 10,
    message: /is a \/25; registry addresses need a \/24/,
  },
  {
    name: 'shared /16 where /24 is needed',
    text: `${HEAD}${NET}  registries:\n    shared:\n      network:\n        cidr: 10.127.0.0/16\n`,
    path: 'spec.registries.shared.network.cidr',
    line: 14,
    message: /is a \/16/,
  },
  {
    name: 'shared /25 where /24 is needed',
    text: `${HEAD}${NET}  registries:\n    shared:\n      network:\n        cidr: 10.127.2.0/25\n`,
    path: 'spec.registries.shared.network.cidr',
    line: 14,
    message: /is a \/25/,
  },
  {
    name: 'shared CIDR not aligned',
    text: `${HEAD}${NET}  registries:\n    shared:\n      network:\n        cidr: 10.127.2.9/24\n`,
    path: 'spec.registries.shared.network.cidr',
    line: 14,
    message: /host bits set/,
  },
  {
    name: 'project subnet overlaps the shared subnet',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2\n    cidr: 10.125.200.0/24\n`,
    path: 'spec.network.cidr',
    line: 10,
    message: /overlaps the shared registry subnet 10\.125\.200\.0\/24/,
  },
  {
    name: 'shared subnet overlaps the slot subnet',
    text: `${HEAD}  cluster:\n    domain: 50.lok8s.dev\n  registries:\n    shared:\n      network:\n        cidr: 10.125.50.0/24\n`,
    path: 'spec.registries.shared.network.cidr',
    line: 11,
    message: /project subnet 10\.125\.50\.0\/24 overlaps/,
  },
  // --- mirrors
  {
    name: 'reserved mirror name build',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: build\n        url: https://x.example.test\n`,
    path: 'spec.registries.mirrors[0].name',
    line: 13,
    message: /"build" is reserved/,
  },
  {
    name: 'reserved mirror name cache',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: cache\n        url: https://x.example.test\n`,
    path: 'spec.registries.mirrors[0].name',
    line: 13,
    message: /"cache" is reserved/,
  },
  {
    name: 'duplicate mirror names',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: https://x.example.test\n      - name: io-x\n        url: https://y.example.test\n`,
    path: 'spec.registries.mirrors[1].name',
    line: 15,
    message: /duplicate mirror name "io-x" \(also mirrors\[0\]\)/,
  },
  {
    name: 'mirror name with upper case and underscore',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: IO_Docker\n        url: https://x.example.test\n`,
    path: 'spec.registries.mirrors[0].name',
    line: 13,
    message: /"IO_Docker" is not allowed here/,
  },
  {
    name: 'mirror URL without scheme',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: x.example.test\n`,
    path: 'spec.registries.mirrors[0].url',
    line: 14,
    message: /"x\.example\.test" has no scheme/,
  },
  {
    name: 'mirror URL with ftp scheme',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: ftp://x.example.test\n`,
    path: 'spec.registries.mirrors[0].url',
    line: 14,
    message: /scheme "ftp" is not supported/,
  },
  {
    name: 'mirror URL with user:password',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: https://bob:hunter2@x.example.test\n`,
    path: 'spec.registries.mirrors[0].url',
    line: 14,
    message: /user name or password \(a literal secret\)/,
  },
  {
    name: 'mirror URL with a query',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: https://x.example.test/?token=abc\n`,
    path: 'spec.registries.mirrors[0].url',
    line: 14,
    message: /must not have a query/,
  },
  {
    name: 'mirror without url',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n`,
    path: 'spec.registries.mirrors[0].url',
    line: 13,
    message: /required field "url" is missing/,
  },
  {
    name: 'literal username/password fields in credentials',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: https://x.example.test\n        credentials:\n          username: bob\n          password: hunter2\n`,
    path: 'spec.registries.mirrors[0].credentials.password',
    line: 17,
    message: /literal secret/,
  },
  {
    name: 'credential value that is not an env var name',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-x\n        url: https://x.example.test\n        credentials:\n          usernameEnv: X_USER\n          passwordEnv: "ghp_s3cr3t-t0ken!"\n`,
    path: 'spec.registries.mirrors[0].credentials.passwordEnv',
    line: 17,
    message: /looks like a token or password, not a variable name/,
  },
  {
    name: 'same registry mirrored twice',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-a\n        url: https://x.example.test\n      - name: io-b\n        url: https://y.example.test\n        registry: x.example.test\n`,
    path: 'spec.registries.mirrors[1].registry',
    line: 17,
    message: /registry "x\.example\.test" is already mirrored by mirrors\[0\]/,
  },
  {
    name: 'registry that is not a host name',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-a\n        url: https://x.example.test\n        registry: docker.io/library\n`,
    path: 'spec.registries.mirrors[0].registry',
    line: 15,
    message: /is not a registry host name/,
  },
  {
    name: "registry that is one of lo's own addresses",
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-a\n        url: http://10.125.200.2\n`,
    path: 'spec.registries.mirrors[0].url',
    line: 14,
    message: /"10\.125\.200\.2" is an address inside lo's own registry subnets/,
  },
  {
    name: 'host port listen address that is not an IP',
    text: `${HEAD}${NET}  nodes:\n    hostPorts:\n      - containerPort: 80\n        hostPort: 8080\n        listenAddress: localhost\n`,
    path: 'spec.nodes.hostPorts[0].listenAddress',
    line: 15,
    message: /"localhost" is not a dotted-quad IPv4 or an IPv6 address/,
  },
  {
    name: 'mirroring the build hostname',
    text: `${HEAD}${NET}  registries:\n    mirrors:\n      - name: io-a\n        url: https://x.example.test\n        registry: lok8s.local\n`,
    path: 'spec.registries.mirrors[0].registry',
    line: 15,
    message: /project's own build registry/,
  },
  {
    name: 'more shared mirrors than addresses (.2-.127)',
    text: mirrors(127, true),
    path: 'spec.registries.mirrors',
    line: 14,
    message: /127 mirrors do not fit: the shared network has 126/,
  },
  {
    name: 'more project mirrors than addresses (.103-.127)',
    text: mirrors(26, false),
    path: 'spec.registries.mirrors',
    line: 14,
    message: /26 mirrors do not fit: the project subnet has 25/,
  },
  // --- slots and domains
  {
    name: 'slot 0',
    text: `${HEAD}  cluster:\n    domain: 0.lok8s.dev\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /slot 0 is out of range/,
  },
  {
    name: 'slot 1',
    text: `${HEAD}  cluster:\n    domain: 1.lok8s.dev\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /slot 1 is out of range/,
  },
  {
    name: 'slot 200 (the shared network)',
    text: `${HEAD}  cluster:\n    domain: 200.lok8s.dev\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /slot 200 is out of range \(2\.\.199; 200 is the shared registry network\)/,
  },
  {
    name: 'slot 125 spelt 125.lok8s.dev',
    text: `${HEAD}  cluster:\n    domain: 125.lok8s.dev\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /slot 125 belongs to lok8s\.dev itself/,
  },
  {
    name: 'slot with a leading zero',
    text: `${HEAD}  cluster:\n    domain: 07.lok8s.dev\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /slot "07" has a leading zero/,
  },
  {
    name: 'non-numeric lok8s.dev subdomain',
    text: `${HEAD}  cluster:\n    domain: foo.lok8s.dev\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /"foo\.lok8s\.dev" is not a slot domain/,
  },
  {
    name: 'other domain without spec.network',
    text: `${HEAD}  cluster:\n    domain: dev.example.test\n`,
    path: 'spec.network',
    line: 5,
    message: /domain "dev\.example\.test" has no lok8s slot, so the project network must be given/,
  },
  {
    name: 'domain that is not a DNS name',
    text: `${HEAD}  cluster:\n    domain: Not_A_Domain\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /"Not_A_Domain" is not allowed here/,
  },
  {
    name: 'domain differs from the directory',
    domain: '50.lok8s.dev',
    text: `${HEAD}  cluster:\n    domain: 51.lok8s.dev\n`,
    path: 'spec.cluster.domain',
    line: 7,
    message: /says "51\.lok8s\.dev" but the file is under clusters\/50\.lok8s\.dev\//,
  },
  // --- names
  {
    name: 'network name longer than 15 characters',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: hb2-network-too-long\n    cidr: 10.126.2.0/24\n`,
    path: 'spec.network.name',
    line: 9,
    message: /longer than 15 characters/,
  },
  {
    name: 'metadata.name longer than 15 characters',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: a-very-long-project\n`,
    path: 'metadata.name',
    line: 4,
    message: /longer than 15 characters/,
  },
  {
    name: 'metadata.name with upper case',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: MyProject\n`,
    path: 'metadata.name',
    line: 4,
    message: /"MyProject" is not allowed here/,
  },
  {
    name: 'project network named like the shared network',
    text: `${HEAD}  cluster:\n    domain: hb2.example.test\n  network:\n    name: lok8s-regs\n    cidr: 10.126.2.0/24\n  registries:\n    shared:\n      network:\n        name: lok8s-regs\n`,
    path: 'spec.network.name',
    line: 9,
    message: /same name as the shared registry network/,
  },
  // --- nodes
  {
    name: 'controlPlane 0',
    text: `${HEAD}${NET}  nodes:\n    controlPlane: 0\n`,
    path: 'spec.nodes.controlPlane',
    line: 12,
    message: /0 is out of range \(minimum 1\)/,
  },
  {
    name: 'controlPlane 10',
    text: `${HEAD}${NET}  nodes:\n    controlPlane: 10\n`,
    path: 'spec.nodes.controlPlane',
    line: 12,
    message: /10 is out of range \(maximum 9\)/,
  },
  {
    name: 'workers 100',
    text: `${HEAD}${NET}  nodes:\n    workers: 100\n`,
    path: 'spec.nodes.workers',
    line: 12,
    message: /100 is out of range \(maximum 99\)/,
  },
  {
    name: 'maxConcurrentDownloads 0',
    text: `${HEAD}${NET}  nodes:\n    maxConcurrentDownloads: 0\n`,
    path: 'spec.nodes.maxConcurrentDownloads',
    line: 12,
    message: /out of range \(minimum 1\)/,
  },
  {
    name: 'host port above 65535',
    text: `${HEAD}${NET}  nodes:\n    hostPorts:\n      - containerPort: 80\n        hostPort: 70000\n`,
    path: 'spec.nodes.hostPorts[0].hostPort',
    line: 14,
    message: /70000 is out of range/,
  },
  {
    name: 'duplicate hostPorts',
    text: `${HEAD}${NET}  nodes:\n    hostPorts:\n      - containerPort: 80\n        hostPort: 8080\n      - containerPort: 81\n        hostPort: 8080\n`,
    path: 'spec.nodes.hostPorts[1].hostPort',
    line: 16,
    message: /host port 127\.0\.0\.1:8080\/TCP is already mapped by hostPorts\[0\]/,
  },
  {
    name: 'kubernetes version without v',
    text: `${HEAD}${NET}  kubernetes:\n    version: "1.34"\n`,
    path: 'spec.kubernetes.version',
    line: 12,
    message: /"1\.34" is not allowed here/,
  },
  // --- p2p
  {
    name: 'p2p port equals routerPort',
    text: `${HEAD}${NET}  registries:\n    p2p:\n      port: 30500\n      routerPort: 30500\n`,
    path: 'spec.registries.p2p.routerPort',
    line: 14,
    message: /routerPort 30500 is the same as p2p\.port/,
  },
  {
    name: 'p2p port equals the default routerPort',
    text: `${HEAD}${NET}  registries:\n    p2p:\n      port: 30021\n`,
    path: 'spec.registries.p2p.port',
    line: 13,
    message: /routerPort 30021 is the same as p2p\.port/,
  },
  {
    name: 'p2p dialTimeout not a duration',
    text: `${HEAD}${NET}  registries:\n    p2p:\n      dialTimeout: fast\n`,
    path: 'spec.registries.p2p.dialTimeout',
    line: 13,
    message: /"fast" is not allowed here/,
  },
  // --- document level
  {
    name: 'wrong apiVersion',
    text: `apiVersion: cluster.lok8s.dev/v1\nkind: Lo\nmetadata:\n  name: hb2\n`,
    path: 'apiVersion',
    line: 1,
    message: /must be "cluster\.lok8s\.dev\/v1beta1"/,
  },
  {
    name: 'wrong kind',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Cluster\nmetadata:\n  name: hb2\n`,
    path: 'kind',
    line: 2,
    message: /must be "Lo"/,
  },
  {
    name: 'missing metadata',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nspec: {}\n`,
    path: 'metadata',
    line: 1,
    message: /required field "metadata" is missing/,
  },
  {
    name: 'missing metadata.name',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata: {}\n`,
    path: 'metadata.name',
    line: 3,
    message: /required field "name" is missing/,
  },
  {
    name: 'YAML syntax error',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: hb2\nspec:\n  nodes: [1, 2\n`,
    path: '',
    line: 6,
    message: /not valid YAML/,
  },
  {
    name: 'YAML with a tab indent',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n\tname: hb2\n`,
    path: '',
    line: 4,
    message: /not valid YAML/,
  },
  { name: 'empty file', text: '', path: '', line: 1, message: /the file is empty/ },
  { name: 'file with only comments', text: '# nothing here\n# at all\n', path: '', line: 1, message: /the file is empty/ },
  {
    name: 'a YAML list instead of a mapping',
    text: `- apiVersion: cluster.lok8s.dev/v1beta1\n- kind: Lo\n`,
    path: '',
    line: 1,
    message: /expected a mapping .*got a list/,
  },
  { name: 'a single scalar instead of a mapping', text: `hello\n`, path: '', line: 1, message: /expected a mapping .*got string/ },
  {
    name: 'duplicate YAML keys',
    text: `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: hb2\nmetadata:\n  name: hb3\n`,
    path: 'metadata',
    line: 5,
    message: /key "metadata" appears twice in the same mapping/,
  },
];

function issuesOf(text: string, domain?: string): ConfigIssue[] {
  try {
    parseSpec(text, { file: FILE, ...(domain ? { domain } : {}) });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.badInput);
    expect((err as ConfigError).exitCode).toBe(2);
    return (err as ConfigError).issues;
  }
  throw new Error('spec was accepted');
}

describe('malformed specs', () => {
  it('has at least 40 distinct cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.text)).size).toBe(CASES.length);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES)('$name', (c) => {
    const issues = issuesOf(c.text, c.domain);
    const hit = issues.find((i) => i.path === c.path && c.message.test(i.message));
    expect(hit, `no issue at ${c.path} matching ${c.message}; got:\n${JSON.stringify(issues, null, 2)}`).toBeDefined();
    expect(hit!.line).toBe(c.line);
    for (const i of issues) {
      // Every issue names the file, a line, what is wrong and how to fix it.
      expect(i.file).toBe(FILE);
      expect(i.line).toBeGreaterThanOrEqual(1);
      expect(i.message.length).toBeGreaterThan(5);
      expect(i.hint, `issue without a fix: ${JSON.stringify(i)}`).toBeTruthy();
    }
  });

  it('reports every problem of one file together, in file order', () => {
    const text = `apiVersion: cluster.lok8s.dev/v1
kind: Lo
metadata:
  name: hb2
  owner: me
spec:
  cluster:
    domain: 07.lok8s.dev
  nodes:
    controlPlane: 0
    workers: "2"
  registries:
    mirrors:
      - name: build
        url: x.example.test
      - name: io-y
        url: https://y.example.test
        credentials:
          usernameEnv: Y_USER
          passwordEnv: hunter2!
`;
    const issues = issuesOf(text);
    const found = issues.map((i) => [i.path, i.line]);
    expect(found).toEqual(
      expect.arrayContaining([
        ['apiVersion', 1],
        ['metadata.owner', 5],
        ['spec.cluster.domain', 8],
        ['spec.nodes.controlPlane', 10],
        ['spec.nodes.workers', 11],
        ['spec.registries.mirrors[0].name', 14],
        ['spec.registries.mirrors[0].url', 15],
        ['spec.registries.mirrors[1].credentials.passwordEnv', 20],
      ]),
    );
    expect(issues).toHaveLength(8);
    const lines = issues.map((i) => i.line!);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
    // The error message lists them all, each with file:line and path.
    let message = '';
    try {
      parseSpec(text, { file: FILE });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('8 problems');
    for (const i of issues) expect(message).toContain(`${FILE}:${i.line}: ${i.path}: ${i.message}`);
  });
});
