import { isMap, isScalar, isSeq, LineCounter, parseDocument, stringify, type Node, type Pair, type YAMLMap } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors/loError.js';
import { shown } from './display.js';
import { formatPath, type Segment } from './yamlPosition.js';
import { rewriteProblem } from './rewrites.js';

/**
 * `lo registries import`: a K3s `registries.yaml` read into lo's `spec.registries.hosts` (docs/registries.md,
 * "K3s registries.yaml"). The fields are K3s's, as its documentation lists them
 * (https://docs.k3s.io/installation/private-registry, k3s-io/docs docs/installation/private-registry.md) and its
 * types name them (k3s-io/k3s pkg/agent/templates/registry.go and rancher/wharfie pkg/registries: `endpoint`,
 * `rewrite`, `auth.{username,password,auth,identity_token}`, `tls.{ca_file,cert_file,key_file,
 * insecure_skip_verify}`); test/fixtures/k3s/registries-fields.json holds that list with its sources.
 * Pure: the caller reads the file. Literal passwords and tokens are never copied: an endpoint that needs
 * credentials gets an `Authorization` header from an environment variable, and the result says which to set.
 */

export interface ImportedTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecureSkipVerify?: boolean;
}

export interface ImportedEndpoint {
  url: string;
  tls?: ImportedTls;
  headers?: { Authorization: { env: string } };
}

/** An environment variable the imported spec reads, and what it must hold (never the value itself). */
export interface ImportedEnv {
  name: string;
  /** e.g. `Basic <base64 of user:password>` */
  holds: string;
  /** Where the credential was in the K3s file. */
  from: string;
  line: number;
}

/** A part of the K3s file with no equivalent in lo (left out of the result). */
export interface ImportNote {
  line: number;
  path: string;
  message: string;
}

/** What `configs.<host>` says, for a lo mirror whose upstream is that host (`--write` applies it). */
export interface ImportedConfig {
  tls?: ImportedTls;
  /** Which credential the file has (never its value). */
  auth?: 'basic' | 'auth' | 'token';
  line: number;
}

/** One `spec.registries.hosts` entry: the endpoints, and the rewrites (regex -> replacement, in the file's order). */
export interface ImportedHost {
  endpoints: ImportedEndpoint[];
  rewrite?: Record<string, string>;
}

export interface K3sImport {
  /** `spec.registries.hosts`, in the file's order. */
  hosts: Record<string, ImportedHost>;
  /** `configs`, by host. */
  configs: Record<string, ImportedConfig>;
  env: ImportedEnv[];
  notes: ImportNote[];
}

/** Keys K3s reads; anything else is named as having no equivalent. */
const AUTH_KEYS = ['username', 'password', 'auth', 'identity_token', 'identitytoken', 'token'] as const;
const TLS_KEYS = { ca_file: 'caFile', cert_file: 'certFile', key_file: 'keyFile', insecure_skip_verify: 'insecureSkipVerify' } as const;

/** The environment variable a host's credentials come from: `LO_<HOST>_AUTH` (`*`: `LO_DEFAULT_AUTH`), or `_USER`, `_PASSWORD`, `_TOKEN`. */
export function authEnvName(host: string, suffix = 'AUTH'): string {
  if (host === '*') return `LO_DEFAULT_${suffix}`;
  const name = host
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
  return `LO_${name}_${suffix}`;
}

/**
 * An endpoint as K3s normalises it (wharfie normalizeEndpointAddress, after containerd's hosts.go): a scheme
 * added when missing (`http` for localhost on a port other than 443, else `https`), `/v2` or no path left out.
 */
export function normalizeEndpoint(text: string): URL | null {
  const withScheme = text.includes('://') ? text : `placeholder://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return null;
  }
  if (!url.hostname) return null;
  if (url.protocol === 'placeholder:') {
    const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
    url = new URL(`${local && url.port && url.port !== '443' ? 'http' : 'https'}://${text}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.search || url.hash || url.username || url.password) return null;
  return url;
}

function urlText(url: URL): string {
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path === '/v2' ? '' : path}`;
}

/** containerd's default endpoint for a registry (docker.io: index.docker.io and registry-1.docker.io). */
function isDefaultEndpoint(registry: string, url: URL): boolean {
  const path = url.pathname.replace(/\/+$/, '');
  if (path !== '' && path !== '/v2') return false;
  if (registry === 'docker.io')
    return url.protocol === 'https:' && ['index.docker.io', 'registry-1.docker.io', 'docker.io'].includes(url.host);
  return url.protocol === 'https:' && url.host === registry;
}

/** Reads a K3s registries.yaml. Throws ConfigError (exit 2) with the line and YAML path of every problem. */
export function importK3sRegistries(text: string, file: string): K3sImport {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const lineAt = (n: unknown): number => {
    const r = (n as Node | undefined)?.range;
    return r ? lc.linePos(r[0]).line : 1;
  };
  const issues: ConfigIssue[] = [];
  const issue = (path: Segment[], line: number, message: string, hint: string): void => {
    issues.push({ file, path: formatPath(path), line, message, hint });
  };
  for (const e of doc.errors) {
    issues.push({
      file,
      path: '',
      line: lc.linePos(e.pos[0]).line || 1,
      message: `not valid YAML: ${e.code}`,
      hint: 'fix the YAML syntax on that line',
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const result: K3sImport = { hosts: {}, configs: {}, env: [], notes: [] };
  const note = (path: Segment[], line: number, message: string): void => {
    result.notes.push({ line, path: formatPath(path), message });
  };
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return result;
  if (!isMap(root)) {
    issue([], lineAt(root), 'is not a mapping', 'a K3s registries.yaml has the top-level keys `mirrors` and `configs`');
    throw new ConfigError(issues);
  }

  const pairs = (map: YAMLMap, path: Segment[]): Array<{ key: string; value: unknown; line: number; pair: Pair }> => {
    const out = [];
    for (const p of map.items) {
      if (!isScalar(p.key) || typeof p.key.value !== 'string') {
        issue(path, lineAt(p.key), 'has a key that is not a string', 'quote the key (registry names are strings; the wildcard is "*")');
        continue;
      }
      out.push({ key: p.key.value, value: p.value, line: lineAt(p.key), pair: p });
    }
    return out;
  };
  const isNull = (n: unknown): boolean => n === null || n === undefined || (isScalar(n) && n.value === null);
  const mapOrNull = (n: unknown, path: Segment[], line: number, what: string): YAMLMap | null => {
    if (isNull(n)) return null;
    if (isMap(n)) return n;
    issue(path, lineAt(n) || line, `is not a mapping`, what);
    return null;
  };
  const stringAt = (n: unknown, path: Segment[], line: number): string | undefined => {
    if (isNull(n)) return undefined;
    if (isScalar(n) && typeof n.value === 'string') return n.value;
    issue(path, lineAt(n) || line, 'is not a string', 'write a path, e.g. /etc/ssl/certs/corp-ca.pem');
    return undefined;
  };

  let mirrors: YAMLMap | null = null;
  let configs: YAMLMap | null = null;
  for (const top of pairs(root, [])) {
    if (top.key === 'mirrors')
      mirrors = mapOrNull(top.value, ['mirrors'], top.line, 'write `mirrors: { <registry>: { endpoint: [...] } }`');
    else if (top.key === 'configs')
      configs = mapOrNull(top.value, ['configs'], top.line, 'write `configs: { <host>: { auth: ..., tls: ... } }`');
    else
      note([top.key], top.line, `${top.key === 'auths' ? 'deprecated `auths` (containerd 1.3)' : 'unknown key'}: no equivalent, left out`);
  }

  // mirrors.<registry>: endpoints in order (with the line each came from), rewrites named.
  const endpoints: Array<{ registry: string; url: URL; path: Segment[]; line: number }> = [];
  for (const m of mirrors ? pairs(mirrors, ['mirrors']) : []) {
    const at: Segment[] = ['mirrors', m.key];
    const body = mapOrNull(m.value, at, m.line, 'write `endpoint: [https://…]` under it');
    if (!body) {
      if (isNull(m.value)) {
        note(
          at,
          m.line,
          "no endpoints: in K3s this only enables its embedded registry mirror for the registry; lo's P2P node mirror (spec.registries.p2p) shares every mirrored registry between nodes: no equivalent, left out",
        );
      }
      continue;
    }
    let listed = 0;
    for (const f of pairs(body, at)) {
      if (f.key === 'endpoint') {
        if (isNull(f.value)) continue;
        if (!isSeq(f.value)) {
          issue([...at, 'endpoint'], lineAt(f.value) || f.line, 'is not a list', 'write `endpoint: ["https://mirror.example.com"]`');
          continue;
        }
        f.value.items.forEach((item, i) => {
          const path: Segment[] = [...at, 'endpoint', i];
          const line = lineAt(item);
          if (!isScalar(item) || typeof item.value !== 'string') {
            issue(path, line, 'is not a string', 'write a URL, e.g. https://mirror.example.com:5000');
            return;
          }
          if (/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(item.value)) {
            // Never echoed: the part before @ may be a password.
            issue(
              path,
              line,
              'has credentials in the URL (user:password@)',
              'remove them and put the credentials under configs.<host>.auth',
            );
            return;
          }
          const url = normalizeEndpoint(item.value);
          if (!url) {
            issue(
              path,
              line,
              `${shown(item.value)} is not an http(s) endpoint`,
              'write scheme://host[:port][/path], e.g. https://mirror.example.com:5000',
            );
            return;
          }
          listed++;
          if (isDefaultEndpoint(m.key, url)) {
            note(
              path,
              line,
              `${shown(item.value)} is the registry's default endpoint, which containerd tries last anyway (K3s ignores it too): left out`,
            );
            return;
          }
          endpoints.push({ registry: m.key, url, path, line });
        });
      } else if (f.key === 'rewrite') {
        // hosts.<registry>.rewrite, rule by rule in the file's order (lo's node agent applies them). A rule lo
        // cannot apply as K3s does (a regex JavaScript reads otherwise, a group the regex lacks) is left out, named.
        const rules = mapOrNull(f.value, [...at, 'rewrite'], f.line, 'write `rewrite: { "<regex>": "<replacement>" }`');
        for (const r of rules ? pairs(rules, [...at, 'rewrite']) : []) {
          if (!isScalar(r.value) || typeof r.value.value !== 'string') {
            issue(
              [...at, 'rewrite', r.key],
              lineAt(r.value) || r.line,
              'is not a string',
              'write the new repository name, e.g. "mirror/$1"',
            );
            continue;
          }
          const problem = rewriteProblem(r.key, r.value.value);
          if (problem) {
            note([...at, 'rewrite', r.key], r.line, `rewrite ${shown(r.key)}: ${problem.message}: left out (${problem.hint})`);
            continue;
          }
          ((result.hosts[m.key] ??= { endpoints: [] }).rewrite ??= {})[r.key] = r.value.value;
        }
      } else note([...at, f.key], f.line, 'unknown key: no equivalent, left out');
    }
    if (listed === 0 && !endpoints.some((e) => e.registry === m.key) && !result.hosts[m.key]?.rewrite) {
      note(at, m.line, 'no endpoints: nothing to import for this registry');
    }
  }

  // configs.<host>: TLS and credentials of the endpoints with that host (`*`: of every host without its own).
  const tlsOf = new Map<string, { tls?: ImportedTls; env?: string; line: number }>();
  for (const c of configs ? pairs(configs, ['configs']) : []) {
    const at: Segment[] = ['configs', c.key];
    const body = mapOrNull(c.value, at, c.line, 'write `auth:` and/or `tls:` under it');
    const entry: { tls?: ImportedTls; env?: string; line: number } = { line: c.line };
    tlsOf.set(c.key, entry);
    for (const f of body ? pairs(body, at) : []) {
      if (f.key === 'tls') {
        const t = mapOrNull(f.value, [...at, 'tls'], f.line, 'write `tls: { ca_file: … }`');
        const tls: ImportedTls = {};
        for (const k of t ? pairs(t, [...at, 'tls']) : []) {
          const target = TLS_KEYS[k.key as keyof typeof TLS_KEYS];
          if (!target) {
            note([...at, 'tls', k.key], k.line, 'unknown key: no equivalent, left out');
          } else if (target === 'insecureSkipVerify') {
            if (isNull(k.value)) continue;
            if (!isScalar(k.value) || typeof k.value.value !== 'boolean') {
              issue([...at, 'tls', k.key], lineAt(k.value) || k.line, 'is not true or false', 'write insecure_skip_verify: true or false');
            } else if (k.value.value) tls.insecureSkipVerify = true;
          } else {
            const v = stringAt(k.value, [...at, 'tls', k.key], k.line);
            if (v) tls[target] = v;
          }
        }
        if (Object.keys(tls).length > 0) {
          entry.tls = tls;
          result.configs[c.key] = { ...result.configs[c.key], tls, line: c.line };
        }
      } else if (f.key === 'auth') {
        const a = mapOrNull(f.value, [...at, 'auth'], f.line, 'write `auth: { username: …, password: … }`');
        const have = new Set<string>();
        for (const k of a ? pairs(a, [...at, 'auth']) : []) {
          if ((AUTH_KEYS as readonly string[]).includes(k.key)) {
            // The value is only checked for presence: it is never read into the result or a message.
            if (!isNull(k.value)) have.add(k.key);
          } else note([...at, 'auth', k.key], k.line, 'unknown key: no equivalent, left out');
        }
        const token = ['identity_token', 'identitytoken', 'token'].find((k) => have.has(k));
        const where = formatPath([...at, 'auth']);
        const holds = token
          ? `Bearer <the ${token} of ${where}>`
          : have.has('auth')
            ? `Basic <the auth value of ${where} (already base64 user:password)>`
            : have.has('username') || have.has('password')
              ? `Basic <base64 of the user name and password of ${where}, joined by ":">`
              : null;
        if (token || have.size > 0)
          result.configs[c.key] = { ...result.configs[c.key], auth: token ? 'token' : have.has('auth') ? 'auth' : 'basic', line: c.line };
        if (holds) {
          entry.env = authEnvName(c.key);
          result.env.push({ name: entry.env, holds, from: where, line: f.line });
        }
      } else note([...at, f.key], f.line, 'unknown key: no equivalent, left out');
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const add = (registry: string, ep: ImportedEndpoint): void => {
    (result.hosts[registry] ??= { endpoints: [] }).endpoints.push(ep);
  };
  const withConfig = (url: string, cfg: { tls?: ImportedTls; env?: string } | undefined): ImportedEndpoint => ({
    url,
    ...(cfg?.tls ? { tls: { ...cfg.tls } } : {}),
    ...(cfg?.env ? { headers: { Authorization: { env: cfg.env } } } : {}),
  });
  const used = new Set<string>();
  for (const e of endpoints) {
    const own = tlsOf.get(e.url.host);
    if (own) used.add(e.url.host);
    add(e.registry, withConfig(urlText(e.url), own ?? tlsOf.get('*')));
    if (!own && tlsOf.has('*')) used.add('*');
  }
  // A config for a host no endpoint names is what K3s uses when pulling `<host>/…` from the registry itself:
  // an endpoint for that registry at its own address carries it (tried before the default endpoint).
  for (const [host, cfg] of tlsOf) {
    if (used.has(host) || host === '*' || (!cfg.tls && !cfg.env)) continue;
    const url = normalizeEndpoint(host);
    if (!url) continue;
    add(host, withConfig(urlText(url), cfg));
    note(
      ['configs', host],
      cfg.line,
      `no endpoint in mirrors has host ${shown(host)}: imported as an endpoint of registry ${shown(host)} at its own address`,
    );
  }
  if (!used.has('*') && tlsOf.get('*')?.tls) {
    note(['configs', '*'], tlsOf.get('*')!.line, 'no endpoint without a config of its own: nothing to apply it to, left out');
  }
  result.notes.sort((a, b) => a.line - b.line);
  return result;
}

/** `spec.registries.hosts` YAML with the variables to set and what was left out as comments (no values). */
export function renderImportYaml(imp: K3sImport, source: string): string {
  const lines = [`# spec.registries from ${source} (lo registries import)`];
  if (imp.env.length > 0) {
    lines.push('# Set before `lo provision` (values are never written into the spec):');
    for (const e of imp.env) lines.push(`#   ${e.name}: ${e.holds} (line ${e.line})`);
  }
  if (imp.notes.length > 0) {
    lines.push('# Left out (no equivalent in lo):');
    for (const n of imp.notes) lines.push(`#   line ${n.line}: ${n.path}: ${n.message}`);
  }
  const body = Object.keys(imp.hosts).length > 0 ? { spec: { registries: { hosts: imp.hosts } } } : { spec: { registries: {} } };
  return `${lines.join('\n')}\n${stringify(body, { lineWidth: 0 })}`;
}
