import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { specOptions } from '../../src/cli/context.js';
import { ConfigError, ExitCode, LoError, MAX_LISTED_ISSUES, type ConfigIssue } from '../../src/errors/loError.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { renderKindConfig } from '../../src/plan/render/renderKindConfig.js';
import { trustCommand } from '../../src/adapters/trust/check.js';
import { loadSpec } from '../../src/spec/loadSpec.js';
import { decodeSpec, MAX_SPEC_ENTRIES, parseSpec } from '../../src/spec/parseSpec.js';
import { shellCommand, shellQuote } from '../../src/util/shell.js';
import { printPlan } from '../../src/cli/commands/plan.js';
import type { Output } from '../../src/cli/output.js';
import { readFileSync } from 'node:fs';

/**
 * Classes of hostile or careless input (issue 13, "Spec input"): each is refused with exit 2, the file, the
 * line, the YAML path and a fix, never an internal error, and nothing it contains reaches the terminal raw.
 */

const FILE = '/specs/h.yaml';
const HEAD = `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: hh\nspec:\n`;
/** Lines 6-10: a custom domain with its network; `cidr` is replaceable. */
const net = (cidr = '10.126.2.0/24', name = 'hh'): string =>
  `  cluster:\n    domain: hh.example.test\n  network:\n    name: ${name}\n    cidr: ${cidr}\n`;

function issuesOf(text: string, file = FILE): ConfigIssue[] {
  try {
    parseSpec(text, { file });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError: ${String((err as Error)?.stack ?? err)}`);
    expect(err.exitCode).toBe(ExitCode.badInput);
    for (const i of err.issues) {
      expect(i.file).toBe(file);
      expect(i.line).toBeGreaterThan(0);
      expect(i.hint, JSON.stringify(i)).toBeTruthy();
    }
    return err.issues;
  }
  return [];
}

/** The issue at `path` matching `message` (and its line when given); fails with every issue listed. */
function expectIssue(text: string, path: string, message: RegExp, line?: number): ConfigIssue {
  const issues = issuesOf(text);
  const hit = issues.find((i) => i.path === path && message.test(i.message));
  expect(hit, `no issue at "${path}" matching ${message}; got ${JSON.stringify(issues, null, 1)}`).toBeDefined();
  if (line !== undefined) expect(hit!.line).toBe(line);
  return hit!;
}

const accepted = (text: string): void => expect(issuesOf(text)).toEqual([]);

const mirror = (url: string, extra = ''): string =>
  `${HEAD}${net()}  registries:\n    mirrors:\n      - name: io-x\n        url: ${JSON.stringify(url)}\n${extra}`;

describe('IPv4: only dotted-quad decimal, only subnets that can work', () => {
  const legacy = [
    '010.126.1.0/24',
    '10.126.01.0/24',
    '0x0a.126.1.0/24',
    '10.8257792/24',
    '10.126.256/24',
    '167772160/24',
    '10.126.1.0/024',
  ];
  it.each(legacy)('refuses the legacy form %s as spec.network.cidr and as the shared cidr', (cidr) => {
    expectIssue(`${HEAD}${net(cidr)}`, 'spec.network.cidr', /is not dotted-quad decimal .*read as/, 10);
    expectIssue(
      `${HEAD}${net()}  registries:\n    shared:\n      network:\n        cidr: ${cidr}\n`,
      'spec.registries.shared.network.cidr',
      /is not dotted-quad decimal/,
      14,
    );
  });
  it('says what a leading-zero subnet is read as (octal: a public range)', () => {
    expectIssue(`${HEAD}${net('010.126.1.0/24')}`, 'spec.network.cidr', /read as 8\.126\.1\.0\/24/);
  });

  it.each([
    ['0.0.0.0/24', /"this network"/],
    ['127.0.0.0/24', /loopback/],
    ['127.5.5.0/24', /loopback/],
    ['169.254.3.0/24', /link-local/],
    ['224.1.1.0/24', /multicast/],
    ['239.255.255.0/24', /multicast/],
    ['240.0.0.0/24', /reserved/],
    ['255.255.255.0/24', /reserved/],
    ['10.244.7.0/24', /kind pod subnet 10\.244\.0\.0\/16/],
    ['10.245.0.0/24', /kind service subnet 10\.245\.0\.0\/16/],
  ])('refuses the subnet %s', (cidr, message) => {
    expectIssue(`${HEAD}${net(cidr)}`, 'spec.network.cidr', message, 10);
    expectIssue(
      `${HEAD}${net()}  registries:\n    shared:\n      network:\n        cidr: ${cidr}\n`,
      'spec.registries.shared.network.cidr',
      message,
    );
  });
  it.each(['10.126.1.0/24', '192.168.50.0/24', '172.30.1.0/24', '10.243.255.0/24', '10.246.0.0/24'])('accepts %s', (cidr) => {
    accepted(`${HEAD}${net(cidr)}`);
  });

  const port = (addr: string): string =>
    `${HEAD}${net()}  nodes:\n    hostPorts:\n      - containerPort: 80\n        hostPort: 8080\n        listenAddress: "${addr}"\n`;
  it.each(['1', '127.1', '127.0.1', '0177.0.0.1', '127.000.000.001', '0x7f.0.0.1', '2130706433', 'fe80::1%eth0', 'localhost'])(
    'refuses the listen address %s',
    (addr) => {
      expectIssue(port(addr), 'spec.nodes.hostPorts[0].listenAddress', /is not a dotted-quad IPv4 or an IPv6 address/, 15);
    },
  );
  it('says what a short listen address is read as', () => {
    expectIssue(port('127.1'), 'spec.nodes.hostPorts[0].listenAddress', /read as 127\.0\.0\.1/);
  });
  it.each(['127.0.0.1', '0.0.0.0', '192.168.1.10', '::1', '::'])('accepts the listen address %s', (addr) => accepted(port(addr)));
});

describe("Docker's own network names", () => {
  it.each(['bridge', 'host', 'none'])('refuses %s as metadata.name when it becomes the network name', (name) => {
    const text = `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: ${name}\nspec:\n  cluster:\n    domain: 50.lok8s.dev\n`;
    expectIssue(text, 'metadata.name', /one of Docker's own networks/, 4);
  });
  it.each(['bridge', 'host', 'none', 'Bridge'])('refuses %s as spec.network.name and as the shared network name', (name) => {
    expectIssue(`${HEAD}${net(undefined, name)}`, 'spec.network.name', /one of Docker's own networks/, 9);
    const shared = `${HEAD}${net()}  registries:\n    shared:\n      network:\n        name: ${name}\n`;
    expectIssue(shared, 'spec.registries.shared.network.name', /one of Docker's own networks/, 14);
  });
  it('accepts metadata.name host when spec.network names the network', () => {
    accepted(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: host\nspec:\n${net(undefined, 'hostnet')}`);
  });
});

describe('P2P ports', () => {
  const p2p = (key: string, port: number): string => `${HEAD}${net()}  registries:\n    p2p:\n      ${key}: ${port}\n`;
  it.each([6443, 10250, 10248, 10249, 10256, 10257, 10259, 2379, 2380])(
    'refuses %i, taken inside every node, as port, routerPort, metricsPort and dataPort',
    (n) => {
      expectIssue(p2p('port', n), 'spec.registries.p2p.port', /already taken by .* inside every kind node/, 13);
      expectIssue(p2p('routerPort', n), 'spec.registries.p2p.routerPort', /already taken by/, 13);
      expectIssue(p2p('metricsPort', n), 'spec.registries.p2p.metricsPort', /already taken by/, 13);
      expectIssue(p2p('dataPort', n), 'spec.registries.p2p.dataPort', /already taken by/, 13);
    },
  );
  const mapped = (containerPort: number, workers: number, p2pBody = ''): string =>
    `${HEAD}${net()}  nodes:\n    workers: ${workers}\n    hostPorts:\n      - containerPort: ${containerPort}\n        hostPort: 8080\n${p2pBody}`;
  it('refuses a host port that maps onto the agent registry or libp2p port when the agent runs', () => {
    expectIssue(mapped(30020, 1), 'spec.nodes.hostPorts[0].containerPort', /P2P agent's registry port/, 14);
    expectIssue(mapped(30021, 1), 'spec.nodes.hostPorts[0].containerPort', /P2P agent's libp2p port/, 14);
    expectIssue(mapped(30023, 1), 'spec.nodes.hostPorts[0].containerPort', /P2P agent's data port/, 14);
    expectIssue(
      mapped(31000, 0, '  registries:\n    p2p:\n      enabled: true\n      port: 31000\n'),
      'spec.nodes.hostPorts[0].containerPort',
      /registry port/,
    );
  });
  it('accepts that container port when no agent runs (one node, p2p off)', () => accepted(mapped(30020, 0)));
});

describe('mirror URLs: the text must be what the parser read', () => {
  it.each([
    ['https://reg\tistry.example.test', /space, tab, line break or control character/],
    ['https://registry.example.test\n', /space, tab, line break or control character/],
    ['https://registry.example.test/v2\u0000', /control character/],
    ['https://registry.example.test?', /query or fragment/],
    ['https://registry.example.test#', /query or fragment/],
    ['https://registry.example.test/?a=1', /query or fragment/],
    ['https://registry.example.test:0', /port 0/],
    ['https://registry.example.test:/', /empty or non-numeric port/],
    ['https://registry.example.test:99999', /not a valid URL/],
    ['https://..', /not a DNS name/],
    ['https://a..b.example.test', /not a DNS name/],
    ['https://-a.example.test', /not a DNS name/],
    ['https://a-.example.test', /not a DNS name/],
    ['https://a_b.example.test', /not a DNS name/],
    ['https://registry.example.test.', /not a DNS name/],
    [`https://${'a'.repeat(64)}.example.test`, /not a DNS name/],
    ['https://010.1.1.1', /not a dotted-quad address \(the URL parser reads it as 8\.1\.1\.1\)/],
    ['https://0x7f.1', /not a dotted-quad address/],
    ['https://10.1', /not a dotted-quad address/],
    ['https://registry.example.test/a/../b', /reads the path as "\/b"/],
    ['https://registry.example.test/./v2', /reads the path as/],
    ['https://registry.example.test\\v2', /not a DNS name/],
    ['https://registry.example.test/a b', /space/],
    ['https://user:pw@registry.example.test', /user name or password/],
    ['ftp://registry.example.test', /scheme "ftp" is not supported/],
    ['registry.example.test', /has no scheme/],
  ])('refuses %j', (url, message) => {
    expectIssue(mirror(url), 'spec.registries.mirrors[0].url', message, 14);
  });

  it('stores the normalised URL and derives the registry from it, never from the raw text', () => {
    const spec = parseSpec(mirror('HTTPS://Registry.Example.TEST:443/'), { file: FILE });
    expect(spec.registries.mirrors[0]).toMatchObject({ url: 'https://registry.example.test', registry: 'registry.example.test' });
    const withPort = parseSpec(mirror('http://10.9.8.7:5000/'), { file: FILE });
    expect(withPort.registries.mirrors[0]).toMatchObject({ url: 'http://10.9.8.7:5000', registry: '10.9.8.7:5000' });
  });

  it.each([
    '..',
    'a..b',
    '-x.example',
    'x.example.test:0',
    'x.example.test:70000',
    'x.example.test:08',
    '10.1',
    '010.1.1.1',
    'x.example.test.',
  ])('refuses the explicit registry name %j', (registry) => {
    expectIssue(
      mirror('https://x.example.test', `        registry: "${registry}"\n`),
      'spec.registries.mirrors[0].registry',
      /is not a registry host name/,
      15,
    );
  });
  it('no mirror URL plans a hosts.toml outside certs.d', () => {
    for (const url of ['https://..', 'https://.', 'https://a/../..']) {
      expect(issuesOf(mirror(url)).length, url).toBeGreaterThan(0);
    }
  });
});

describe('credentials: upper-case variable names, literal secrets refused and never echoed', () => {
  const creds = (user: string, pass: string, url = 'https://x.example.test'): string =>
    mirror(url, `        credentials:\n          usernameEnv: "${user}"\n          passwordEnv: "${pass}"\n`);
  const secrets = [
    'ghp_0123456789abcdefABCDEF0123456789abcd',
    'github_pat_11ABCDEFG0123456789_abcdefghijkl',
    'glpat-xxxxxxxxxxxxxxxxxxxx',
    'AKIAIOSFODNN7EXAMPLE',
    'xoxb-1234-5678-abcdef',
    'dckr_pat_abcdefghijklmnop',
    'eyJhbGciOiJIUzI1NiJ9',
    'aB3dE5fG7hJ9kL1mN3pQ5rS',
  ];
  it.each(secrets)('refuses %s as a token and never shows it', (secret) => {
    const issues = issuesOf(creds('REG_USER', secret));
    const hit = issues.find((i) => i.path === 'spec.registries.mirrors[0].credentials.passwordEnv');
    expect(hit?.message).toMatch(/looks like a token or password/);
    expect(JSON.stringify(issues)).not.toContain(secret);
    expect(JSON.stringify(issues)).not.toContain(secret.slice(0, 8));
  });
  it.each(['reg_user', 'Reg_User', '1USER', 'MY-USER', 'MY USER'])('refuses the variable name %j (upper case only)', (name) => {
    expectIssue(creds(name, 'REG_TOKEN'), 'spec.registries.mirrors[0].credentials.usernameEnv', /not an environment variable name/, 16);
  });
  it('never echoes a credentials value of the wrong type, nor a stray field holding a secret', () => {
    const typed = mirror(
      'https://x.example.test',
      '        credentials:\n          usernameEnv: 12345678\n          passwordEnv: REG_TOKEN\n',
    );
    expect(JSON.stringify(issuesOf(typed))).not.toContain('12345678');
    const stray = mirror(
      'https://x.example.test',
      '        credentials:\n          usernameEnv: U\n          passwordEnv: P\n          hunter2hunter2: x\n',
    );
    expect(JSON.stringify(issuesOf(stray))).not.toContain('hunter2hunter2');
  });
  it('accepts upper-case names and warns when they would go to an http:// upstream', () => {
    const spec = parseSpec(creds('REG_USER', 'REG_TOKEN', 'http://x.example.test'), { file: FILE });
    expect(spec.warnings).toEqual([expect.stringMatching(/mirrors\[0\] sends credentials to http:\/\/x\.example\.test without TLS/)]);
    expect(parseSpec(creds('REG_USER', 'REG_TOKEN'), { file: FILE }).warnings).toEqual([]);
  });
});

describe('YAML that must end in a spec error, never a crash', () => {
  it('an undefined alias', () => {
    expectIssue(`${HEAD}  nodes:\n    workers: *missing\n`, 'spec.nodes.workers', /alias \*missing has no anchor/, 7);
  });
  it('an alias bomb', () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]'];
    for (const [prev, next] of [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'd'],
      ['d', 'e'],
      ['e', 'f'],
    ])
      bomb.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(',')}]`);
    expectIssue(`${HEAD}${bomb.map((l) => `  ${l}`).join('\n')}\n`, '', /alias bomb/);
  });
  it.each([
    [`${HEAD}  nodes: &n\n    workers: *n\n`, 'spec.nodes.workers', 7],
    [`${HEAD}  registries:\n    mirrors: &m\n      - *m\n`, 'spec.registries.mirrors[0]', 8],
  ])('a value that contains itself (%#)', (text, path, line) => {
    expectIssue(text, path, /inside its own anchor/, line);
  });
  it('more than one document', () => {
    expectIssue(`${HEAD}${net()}---\n${HEAD}`, '', /more than one YAML document/, 11);
  });
  it('bytes that are not UTF-8', () => {
    const bytes = Buffer.concat([Buffer.from(`${HEAD}  cluster:\n    domain: caf`), Buffer.from([0xe9]), Buffer.from('.example\n')]);
    try {
      decodeSpec(bytes, FILE);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues[0]).toMatchObject({ file: FILE, line: 7, message: expect.stringMatching(/not UTF-8/) });
    }
    expect(decodeSpec(Buffer.from(`\ufeff${HEAD}`), FILE)).toBe(HEAD);
  });
  it.each([
    ['\u0000', /NUL byte/],
    ['\u001b', /control character U\+001B/],
    ['\u0007', /control character U\+0007/],
    ['\u007f', /control character U\+007F/],
    ['\u009b', /control character U\+009B/],
  ])('a forbidden character (%j), quoted or not', (c, message) => {
    expectIssue(`${HEAD}  cluster:\n    domain: "a${c}b.example"\n`, '', message, 7);
    expectIssue(`${HEAD}  cluster:\n    domain: a${c}b.example\n`, '', message, 7);
  });
  it.each(['.inf', '-.inf', '.nan', '.NaN', '1e400'])('%s where a number belongs', (v) => {
    expectIssue(`${HEAD}  nodes:\n    workers: ${v}\n`, 'spec.nodes.workers', /is not a value lo can use/, 7);
  });
  it('a duplicate key, named with its path', () => {
    expectIssue(`${HEAD}  nodes:\n    workers: 1\n    workers: 2\n`, 'spec.nodes.workers', /key "workers" appears twice/, 8);
    expectIssue(`${HEAD}  nodes: {workers: 1, workers: 2}\n`, 'spec.nodes.workers', /key "workers" appears twice/, 6);
  });
  it('more entries than a spec can have, in block and flow style, before the YAML parser sees them', () => {
    const block = Array.from({ length: MAX_SPEC_ENTRIES + 1 }, (_, i) => `    k${i}: 1`).join('\n');
    const hit = expectIssue(`${HEAD}  nodes:\n${block}\n`, '', new RegExp(`more than ${MAX_SPEC_ENTRIES} entries`));
    expect(hit.line).toBeGreaterThan(MAX_SPEC_ENTRIES - 10);
    expectIssue(`${HEAD}  nodes: [${'1,'.repeat(MAX_SPEC_ENTRIES)}1]\n`, '', /more than .* entries/, 6);
    // Comments and blank lines are not entries.
    const comments = Array.from({ length: MAX_SPEC_ENTRIES + 1 }, (_, i) => (i % 2 ? `# note ${i}, [x]` : '')).join('\n');
    expect(parseSpec(`${HEAD}${net()}${comments}\n`, { file: FILE }).name).toBe('hh');
  });
  it('very deep nesting, in flow and block style, quickly and once', () => {
    for (const text of [
      `${HEAD}  nodes: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`,
      `${HEAD}  nodes: ${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}\n`,
      `${HEAD}${Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i + 2)}k:`).join('\n')} 1\n`,
      `${HEAD}  nodes: ${'['.repeat(40)}${']'.repeat(40)}\n`,
    ]) {
      const t0 = performance.now();
      const issues = issuesOf(text);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(issues.filter((i) => /nested/.test(i.message))).toHaveLength(1);
    }
  });
});

describe('what an error echoes', () => {
  it('escapes control characters and cuts long values', () => {
    const issues = issuesOf(`${HEAD}${net()}  nodes:\n    ${'x'.repeat(1000)}: 1\n    "\\e[31mred\\e[0m": 2\n`);
    const text = new ConfigError(issues).message;
    expect(text).not.toContain('\u001b');
    expect(text).toContain('\\u001b[31mred');
    expect(text).not.toContain('x'.repeat(100));
    expect(text).toContain(`${'x'.repeat(48)}…`);
  });
  it('suggests only for short keys', () => {
    expect(issuesOf(`${HEAD}${net()}  nodes:\n    worker: 1\n`)[0]!.hint).toMatch(/did you mean "workers"/);
    expect(issuesOf(`${HEAD}${net()}  nodes:\n    ${'workers'.repeat(6)}: 1\n`)[0]!.hint).not.toMatch(/did you mean/);
  });
  it(`lists at most ${MAX_LISTED_ISSUES} issues and counts the rest`, () => {
    const keys = Array.from({ length: 500 }, (_, i) => `    k${i}: 1`).join('\n');
    try {
      parseSpec(`${HEAD}${net()}  nodes:\n${keys}\n`, { file: FILE });
      expect.unreachable();
    } catch (err) {
      const e = err as ConfigError;
      expect(e.issues).toHaveLength(MAX_LISTED_ISSUES);
      expect(e.omitted).toBe(500 - MAX_LISTED_ISSUES);
      expect(e.message).toMatch(/invalid spec \(500 problems\)/);
      expect(e.message).toContain(`... and ${500 - MAX_LISTED_ISSUES} more`);
      expect(e.toJSON()).toMatchObject({ omitted: 450 });
    }
  });
  it('a file that is not a spec is named as such and nothing of it is echoed', () => {
    const shadow = 'root:$6$saltsalt$hashhashhashhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n';
    const issues = issuesOf(shadow);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).toMatch(/is not a lo spec/);
    expect(JSON.stringify(issues)).not.toMatch(/\$6\$|saltsalt|daemon/);
    const other = issuesOf('name: x\nimage: nginx\n');
    expect(other.map((i) => i.message)).toEqual([expect.stringMatching(/is not a lo spec/)]);
  });
});

describe('--config and the domain argument', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lo-h13s-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const refused = async (opts: Parameters<typeof loadSpec>[0], message: RegExp): Promise<void> => {
    const err = await loadSpec({ cwd: dir, ...opts }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).exitCode).toBe(ExitCode.badInput);
    expect((err as LoError).message).toMatch(message);
  };

  it('refuses a FIFO without blocking, a directory, a device and a file over 1 MiB', { timeout: 10_000 }, async () => {
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    await refused({ config: fifo }, /not a regular file/);
    await refused({ config: dir }, /is a directory/);
    await refused({ config: '/dev/zero' }, /not a regular file/);
    await refused({ config: '/dev/null' }, /not a regular file/);
    const big = join(dir, 'big.yaml');
    await writeFile(big, `${HEAD}${'#'.repeat(1024 * 1024)}\n`);
    await refused({ config: big }, /larger than 1 MiB/);
  });
  it('reads a file of up to 1 MiB', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(file, `${HEAD}${net()}${'#'.padEnd(1024 * 1024 - 200, '#')}\n`);
    expect((await loadSpec({ cwd: dir, config: file })).name).toBe('hh');
  });
  it('refuses --config "" instead of reading the default', async () => {
    await refused({ config: '' }, /--config is empty/);
    expect(specOptions('lok8s.dev', { config: '' })).toEqual({ config: '' });
  });
  it.each(['.', '..', '../etc', 'a/b', 'a..b', '-x.dev', 'x.dev.', ''])('refuses the domain argument %j', async (domain) => {
    await refused({ domain }, /is not a domain/);
  });
  it('escapes a file name with control characters in the message', async () => {
    await refused({ config: 'no\u001b[2Jsuch\nfile.yaml' }, /no spec at .*no\\u001b\[2Jsuch\\nfile\.yaml/);
  });

  it('lo plan on a bad spec exits 2, prints no raw escapes and writes nothing', async () => {
    const state = join(dir, 'state');
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    const file = join(cwd, 'bad.yaml');
    await writeFile(file, `${HEAD}${net('010.126.1.0/24')}  nodes:\n    "\\e]0;pwned\\a": 1\n`);
    const saved = { ...process.env };
    process.env.LO_STATE_DIR = state;
    process.env.DOCKER_HOST = `unix://${join(dir, 'no-docker.sock')}`;
    let err = '';
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
    const o = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    let code: number;
    try {
      code = await main(['node', 'lo', '--config', file, 'plan']);
    } finally {
      e.mockRestore();
      o.mockRestore();
      process.env = saved;
    }
    expect(code).toBe(ExitCode.badInput);
    expect(err).toMatch(/bad\.yaml:10: spec\.network\.cidr: "010\.126\.1\.0\/24" is not dotted-quad decimal/);
    expect(err).toMatch(/bad\.yaml:12: spec\.nodes\.\\u001b\]0;pwned\\u0007: unknown field/);
    // eslint-disable-next-line no-control-regex
    expect(err).not.toMatch(/[\u0000-\u0008\u000b-\u001a\u001c-\u001f]/);
    // Only chalk's colour codes may remain.
    // eslint-disable-next-line no-control-regex
    expect(err.replace(/\u001b\[[0-9;]*m/g, '')).not.toContain('\u001b');
    expect(await readdir(cwd)).toEqual(['bad.yaml']);
    expect(await readdir(dir)).not.toContain('state');
  });
});

describe('the kind config comment and copyable hints', () => {
  const paths = { stateDir: '/state', caRoot: "/ca dir/it's $(here)" };
  const spec = (file: string) => parseSpec(`${HEAD}${net()}`, { file });

  it('a spec path with a line break cannot add YAML to the kind config', () => {
    const file = '/x/evil\nnetworking: {apiServerAddress: 0.0.0.0}\nx.yaml';
    const rendered = renderKindConfig(planCluster(spec(file), { paths }));
    const config = parseYaml(rendered) as { networking: Record<string, unknown> };
    expect(config.networking).not.toHaveProperty('apiServerAddress');
    expect(rendered.split('\n')[0]).toBe(
      '# Written by lo from /x/evil\\nnetworking: {apiServerAddress: 0.0.0.0}\\nx.yaml; regenerated on every `lo provision`.',
    );
  });

  it('quotes every argument of the lo trust command for the shell', () => {
    const file = "/my specs/$(rm -rf x)/it's.yaml";
    const plan = planCluster(spec(file), { paths });
    const command = trustCommand(plan, { sudo: true });
    expect(command).toBe(`sudo env 'CAROOT=${"/ca dir/it'\\''s $(here)"}' lo --config '/my specs/$(rm -rf x)/it'\\''s.yaml' trust --yes`);
    // A real shell reads back exactly the arguments.
    const argv = execFileSync('sh', ['-c', `printf '%s\\n' ${command.replace(/^sudo env /, '')}`], { encoding: 'utf8' })
      .split('\n')
      .slice(0, -1);
    expect(argv).toEqual([`CAROOT=${paths.caRoot}`, 'lo', '--config', file, 'trust', '--yes']);
  });

  it('lo plan escapes control characters in every value it prints (spec path, state and CA paths)', () => {
    const file = "/my specs/it's $HOME \u001b[31mred\nproject fake  domain x\u202e.yaml";
    const weird = { stateDir: '/state\u001b]0;title\u0007', caRoot: '/ca\tdir\u009b' };
    const lines: string[] = [];
    const out = { printLine: (t: string) => lines.push(t) } as unknown as Output;
    printPlan(out, planCluster(spec(file), { paths: weird }), true);
    const text = lines.join('\n');
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    // no value adds a line: the fake `project` line stays inside the first one
    expect(text.split('\n').filter((l) => l.startsWith('project '))).toHaveLength(1);
    expect(lines[0]).toBe(
      "project hh  domain hh.example.test  slot -  spec /my specs/it's $HOME \\u001b[31mred\\nproject fake  domain x\\u202e.yaml",
    );
    expect(text).toContain('CA /ca\\tdir\\u009b/rootCA.pem');
    expect(text).toContain('/state\\u001b]0;title\\u0007/projects/hh');
  });

  it('every hint that prints a command line to copy quotes its values with shellQuote / shellCommand', async () => {
    const files = (await readdir(new URL('../../src', import.meta.url), { recursive: true })).filter((f) => f.endsWith('.ts'));
    const unquoted: string[] = [];
    for (const f of files) {
      const text = readFileSync(new URL(`../../src/${f}`, import.meta.url), 'utf8');
      // a command in a message: \`docker …\`, \`sudo …\`, \`lo …\`, \`kubectl …\`, \`kind …\` with a value in it
      for (const m of text.matchAll(/\\`((?:docker|sudo|lo|kubectl|kind) [^`]*)\\`/g)) {
        for (const v of m[1]!.matchAll(/\$\{([^}]*)\}/g)) if (!/^shell(Quote|Command)\(/.test(v[1]!)) unquoted.push(`${f}: ${m[1]}`);
      }
    }
    expect(unquoted).toEqual([]);
  });

  it('shellQuote leaves plain words bare and round-trips anything else', () => {
    expect(shellQuote('lok8s.dev')).toBe('lok8s.dev');
    expect(shellQuote('')).toBe("''");
    const args = ['a b', "it's", '$HOME', '`id`', 'x;y', '*', '\\n', '!', '~'];
    const out = execFileSync('sh', ['-c', `printf '%s\\n' ${shellCommand(args)}`], { encoding: 'utf8' });
    expect(out.split('\n').slice(0, -1)).toEqual(args);
  });
});
