import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { PUBLIC_MODE, readIfExists, writeFileAtomic } from '../apply/files.js';
import { ExitCode, LoError } from '../errors/loError.js';
import {
  K3S_CA_FILE,
  planContainerdExport,
  renderDockerExport,
  renderK3sRegistries,
  type DockerExport,
  type ExportFile,
  type K3sRegistriesDoc,
} from '../plan/exportRegistries.js';
import type { Plan } from '../plan/types.js';
import {
  authEnvName,
  importK3sRegistries,
  renderImportYaml,
  type ImportedEnv,
  type ImportNote,
  type K3sImport,
} from '../spec/importK3s.js';
import { loadSpec, type LoadSpecOptions } from '../spec/loadSpec.js';
import { parseSpec } from '../spec/parseSpec.js';
import { shownBare } from '../spec/display.js';
import { loadPlan, type PlanDeps } from './plan.js';

export type ExportFormat = 'k3s' | 'containerd' | 'docker';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['k3s', 'containerd', 'docker'];

export interface ExportOptions {
  format: ExportFormat;
  /** A directory (or, for k3s, a file) to write; absent: print (containerd needs it). */
  out?: string;
  /** k3s: where the nodes find lo's CA. */
  caFile?: string;
  cwd?: string;
}

export interface ExportResult {
  format: ExportFormat;
  project: string;
  /** What goes to stdout when nothing is written (k3s: the registries.yaml; docker: the steps). */
  text: string;
  /** Files written, with their modes (never their content). */
  written: Array<{ path: string; mode: string }>;
  notes: string[];
  k3s?: K3sRegistriesDoc;
  docker?: DockerExport;
}

const usage = (message: string, hint: string): LoError => new LoError('E_USAGE', message, { hint, exitCode: ExitCode.badInput });

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/**
 * Writes the export's files: texts atomically, copies of lo's files (the CA, the certs.d tree: `lo registry
 * up` creates them). Every source is read first, so a missing one writes nothing.
 */
async function writeExport(files: ExportFile[]): Promise<ExportResult['written']> {
  const data = await Promise.all(
    files.map(async (f) => {
      if (f.content !== undefined) return f.content;
      const bytes = await readFile(f.copyFrom!).catch(() => null);
      if (!bytes) {
        throw new LoError('E_TLS', `${shownBare(f.copyFrom!)} does not exist yet; nothing was written`, {
          hint: 'run `lo registry up` (or `lo provision`) first: it creates the CA and the certs.d tree the export copies',
        });
      }
      return bytes;
    }),
  );
  for (const [i, f] of files.entries()) await writeFileAtomic(f.path, data[i]!, f.mode);
  return files.map((f) => ({ path: f.path, mode: `0${f.mode.toString(8)}` }));
}

/** `lo registries export`: lo's registries for K3s/k3d, a host containerd or the host Docker engine. */
export async function registriesExport(specOpts: LoadSpecOptions, opts: ExportOptions, deps: PlanDeps = {}): Promise<ExportResult> {
  if (!EXPORT_FORMATS.includes(opts.format)) {
    throw usage(`--format ${shownBare(String(opts.format))} is not a format`, `use one of: ${EXPORT_FORMATS.join(', ')}`);
  }
  const { plan } = await loadPlan(specOpts, deps);
  const out = opts.out === undefined ? undefined : resolve(opts.cwd ?? process.cwd(), opts.out);
  const base = { format: opts.format, project: plan.project.name };
  if (opts.format === 'k3s') return exportK3s(plan, out, opts.caFile ?? K3S_CA_FILE, base);
  if (opts.format === 'docker') {
    const docker = renderDockerExport(plan);
    let written: ExportResult['written'] = [];
    if (out) {
      const files: ExportFile[] = [
        { path: join(out, 'daemon.json'), mode: PUBLIC_MODE, content: `${JSON.stringify(docker.daemonJson, null, 2)}\n` },
        ...docker.certs.map((c) => ({ path: join(out, 'certs.d', c.host, basename(c.path)), mode: c.mode, copyFrom: c.source })),
      ];
      written = await writeExport(files);
    }
    return { ...base, text: `${docker.steps.join('\n')}\n`, written, notes: docker.notes, docker };
  }
  if (!out) throw usage('--format containerd needs --out DIR', 'name the directory for the certs.d tree, e.g. --out ./certs.d');
  // A hosts.toml with header values holds them only as `lo registry up` wrote it (the plan shows no values).
  const onDisk = new Map<string, string>();
  for (const h of plan.containerd.hosts.filter((x) => (x.headerEnv?.length ?? 0) > 0)) {
    const text = await readIfExists(h.path);
    if (text === null) {
      throw new LoError('E_CONFIG', `${shownBare(h.path)} does not exist yet`, {
        hint: 'run `lo registry up` first: it writes the header values',
        exitCode: ExitCode.badInput,
      });
    }
    onDisk.set(h.path, text);
  }
  const tree = planContainerdExport(plan, out, (h) => onDisk.get(h.path) ?? h.content);
  const written = await writeExport(tree.files);
  return { ...base, text: '', written, notes: tree.notes };
}

async function exportK3s(
  plan: Plan,
  out: string | undefined,
  caFile: string,
  base: Pick<ExportResult, 'format' | 'project'>,
): Promise<ExportResult> {
  const k3s = renderK3sRegistries(plan, caFile);
  if (!out) return { ...base, text: k3s.yaml, written: [], notes: k3s.notes, k3s: k3s.doc };
  const dir = (await isDir(out)) || out.endsWith('/');
  const files: ExportFile[] = [{ path: dir ? join(out, 'registries.yaml') : out, mode: PUBLIC_MODE, content: k3s.yaml }];
  if (dir && plan.tls.enabled) files.push({ path: join(out, 'lo-ca.crt'), mode: PUBLIC_MODE, copyFrom: plan.tls.caCertPath });
  const written = await writeExport(files);
  const notes = dir && plan.tls.enabled ? k3s.notes.map((n) => n.replace(plan.tls.caCertPath, join(out, 'lo-ca.crt'))) : k3s.notes;
  return { ...base, text: '', written, notes, k3s: k3s.doc };
}

export interface ImportOptions {
  /** The K3s registries.yaml. */
  file: string;
  /** Merge into the spec file (comments kept) instead of printing. */
  write?: boolean;
  cwd?: string;
}

export interface ImportResult {
  source: string;
  hosts: K3sImport['hosts'];
  env: ImportedEnv[];
  notes: ImportNote[];
  /** The YAML printed (without --write). */
  text: string;
  /** The spec file written (with --write), and the registries it replaced. */
  written?: { file: string; replaced: string[]; mirrors: MirrorUpdate[] };
}

/** What `--write` set on a lo mirror whose upstream is a `configs` host of the K3s file. */
export interface MirrorUpdate {
  mirror: string;
  host: string;
  /** YAML paths set, e.g. `tls.caFile`, `credentials`. */
  set: string[];
  /** What was not set, and why. */
  skipped: string[];
}

/**
 * K3s's `configs.<host>` for the lo mirrors (in the spec file) whose upstream is that host: the CA goes to the
 * mirror's `tls.caFile` (registry:2 has no client certificate or skip-verify: those stay with the endpoints),
 * credentials to `credentials` as variable names. Existing settings are kept. Mutates `doc`.
 */
function applyToMirrors(doc: ReturnType<typeof parseDocument>, imp: K3sImport, env: ImportedEnv[]): MirrorUpdate[] {
  const mirrors = doc.getIn(['spec', 'registries', 'mirrors']);
  if (!isSeq(mirrors)) return [];
  const updates: MirrorUpdate[] = [];
  mirrors.items.forEach((item, i) => {
    if (!isMap(item)) return;
    const name = String(item.get('name') ?? i);
    let host: string;
    try {
      host = new URL(String(item.get('url'))).host;
    } catch {
      return;
    }
    const cfg = imp.configs[host];
    if (!cfg) return;
    const u: MirrorUpdate = { mirror: name, host, set: [], skipped: [] };
    const at = (...k: string[]) => ['spec', 'registries', 'mirrors', i, ...k];
    if (cfg.tls?.caFile) {
      if (doc.hasIn(at('tls', 'caFile'))) u.skipped.push('tls.caFile: the mirror has one');
      else {
        doc.setIn(at('tls', 'caFile'), cfg.tls.caFile);
        u.set.push('tls.caFile');
      }
    }
    if (cfg.tls?.certFile || cfg.tls?.keyFile)
      u.skipped.push('tls.certFile/keyFile: registry:2 cannot present a client certificate (the endpoint has it)');
    if (cfg.tls?.insecureSkipVerify) u.skipped.push('tls.insecureSkipVerify: registry:2 cannot skip verification (the endpoint has it)');
    if (cfg.auth) {
      if (doc.hasIn(at('credentials'))) u.skipped.push('credentials: the mirror has them');
      else {
        const creds =
          cfg.auth === 'token'
            ? { tokenEnv: authEnvName(host, 'TOKEN') }
            : { usernameEnv: authEnvName(host, 'USER'), passwordEnv: authEnvName(host, 'PASSWORD') };
        doc.setIn(at('credentials'), doc.createNode(creds));
        u.set.push('credentials');
        const from = `configs["${host}"].auth`;
        for (const [key, name] of Object.entries(creds)) {
          const holds =
            key === 'tokenEnv'
              ? `the token of ${from}`
              : key === 'usernameEnv'
                ? `the user name of ${from}${cfg.auth === 'auth' ? ' (the part before ":" of its base64-decoded auth value)' : ''}`
                : `the password of ${from}${cfg.auth === 'auth' ? ' (the part after ":" of its base64-decoded auth value)' : ''}`;
          env.push({ name, holds: `${holds}, for mirror ${name}`, from, line: cfg.line });
        }
      }
    }
    if (u.set.length || u.skipped.length) updates.push(u);
  });
  return updates;
}

const MAX_IMPORT_BYTES = 1024 * 1024;

/** `lo registries import FILE [--write]`: a K3s registries.yaml as spec.registries (printed or merged). */
export async function registriesImport(specOpts: LoadSpecOptions, opts: ImportOptions): Promise<ImportResult> {
  const source = resolve(opts.cwd ?? process.cwd(), opts.file);
  const st = await stat(source).catch(() => null);
  if (!st?.isFile()) {
    throw new LoError('E_CONFIG_NOT_FOUND', `no file at ${shownBare(source)}`, {
      hint: 'name a K3s registries.yaml',
      exitCode: ExitCode.badInput,
    });
  }
  if (st.size > MAX_IMPORT_BYTES) throw usage(`${shownBare(source)} is larger than 1 MiB`, 'name a K3s registries.yaml (a few KiB)');
  const imp = importK3sRegistries(await readFile(source, 'utf8'), source);
  const result: ImportResult = { source, hosts: imp.hosts, env: imp.env, notes: imp.notes, text: renderImportYaml(imp, source) };
  if (!opts.write) return result;

  // The spec file itself (not the built-in default): loadSpec finds it and checks it as it is now.
  const spec = await loadSpec({ ...specOpts, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  if (spec.file.startsWith('<built-in')) {
    throw new LoError('E_CONFIG_NOT_FOUND', 'there is no spec file to write into (lok8s.dev uses the built-in default)', {
      hint: "create clusters/lok8s.dev/cluster.lok8s.yaml (copy the README's default), or name one with --config",
      exitCode: ExitCode.badInput,
    });
  }
  const text = await readFile(spec.file, 'utf8');
  const doc = parseDocument(text);
  const replaced: string[] = [];
  const existing = doc.getIn(['spec', 'registries', 'hosts']);
  for (const [registry, value] of Object.entries(imp.hosts)) {
    if (isMap(existing) && existing.has(registry)) replaced.push(registry);
    doc.setIn(['spec', 'registries', 'hosts', registry], doc.createNode(value));
  }
  const env = [...imp.env];
  const mirrors = applyToMirrors(doc, imp, env);
  const merged = doc.toString({ lineWidth: 0 });
  // Nothing is written that lo would refuse: the merged file is checked as `lo plan` checks it, but for the
  // TLS files it names (K3s node paths: they must exist here before `lo plan`, which says so).
  parseSpec(merged, { file: spec.file, baseDir: dirname(spec.file), ...(specOpts.domain ? { domain: specOpts.domain } : {}) });
  const mode = (await stat(spec.file)).mode & 0o777;
  await writeFileAtomic(spec.file, merged, mode);
  return { ...result, env, written: { file: spec.file, replaced, mirrors } };
}
