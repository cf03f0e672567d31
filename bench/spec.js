/**
 * Spec input benchmark (issue 13): `lo plan` on the worst inputs a spec file can be must refuse them
 * (exit 2) well under a second and under 150 MB. Each input runs the built CLI in a fresh node process
 * (bench/_specChild.js), timed from spawn to exit; the child reports its own peak RSS. No Docker is needed:
 * every input is refused before lo looks at the engine (the valid baseline sees an unreachable one).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const TIME_TARGET_MS = 1000;
const RSS_TARGET_MB = 150;

const HEAD = 'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: bench\nspec:\n';
const NET = '  cluster:\n    domain: bench.example.test\n  network:\n    name: bench\n    cidr: 10.126.3.0/24\n';
/** Pads `text` with a YAML comment to exactly `size` bytes. */
const fill = (text, size) => `${text}#${'x'.repeat(size - text.length - 2)}\n`;

/** The inputs: name -> file content (a string) or a path to use as is. */
function inputs() {
  const bomb = ['  a: &a [x,x,x,x,x,x,x,x,x]'];
  for (let i = 1; i < 10; i++)
    bomb.push(
      `  ${'abcdefghij'[i]}: &${'abcdefghij'[i]} [${Array(9)
        .fill(`*${'abcdefghij'[i - 1]}`)
        .join(',')}]`,
    );
  const half = Math.floor((MiB - HEAD.length - 20) / 2);
  let block = HEAD;
  for (let i = 2; block.length < MiB - 4000; i++) block += `${' '.repeat(i)}k:\n`;
  const keys = [];
  for (let i = 0, len = HEAD.length + NET.length + 10; len < MiB - 40; i++) {
    const line = `    unknown${i}: 1\n`;
    keys.push(line);
    len += line.length;
  }
  const ports = [];
  for (let i = 0, len = HEAD.length + NET.length + 30; len < MiB - 100; i++) {
    const item = `      - containerPort: ${(i % 60000) + 1}\n        hostPort: ${(i % 60000) + 1}\n        listenAddress: 010.0.0.${i % 250}\n`;
    ports.push(item);
    len += item.length;
  }
  const under = Array.from({ length: MAX_SPEC_ENTRIES - 20 }, (_, i) => `    unknown${i}: 1\n`).join('');
  return {
    'valid spec (baseline)': `${HEAD}${NET}`,
    [`just under the entry cap (${MAX_SPEC_ENTRIES - 20} unknown keys)`]: `${HEAD}${NET}  nodes:\n${under}`,
    'flow nesting at the depth cap (16)': `${HEAD}  nodes: ${'['.repeat(16)}${']'.repeat(16)}\n`,
    'alias bomb (9^10 values)': `${HEAD}${bomb.join('\n')}\n`,
    'flow nesting 1 MiB deep ([[[...]]])': `${HEAD}  nodes: ${'['.repeat(half)}${']'.repeat(half)}\n`,
    'block nesting (1 MiB of indentation)': block,
    '1 MiB of unknown keys (~55k issues)': `${HEAD}${NET}  nodes:\n${keys.join('')}`,
    '1 MiB of bad host ports (~13k items)': `${HEAD}${NET}  nodes:\n    hostPorts:\n${ports.join('')}`,
    '1 MiB name value': `${HEAD.replace('name: bench', `name: ${'a'.repeat(MiB - 200)}`)}`,
    '1 MiB file of NULs': '\0'.repeat(MiB),
    'file over 1 MiB (2 MiB)': fill(`${HEAD}${NET}`, 2 * MiB),
    '/dev/zero': { path: '/dev/zero' },
  };
}

function runLo(file, rssFile) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    execFile(
      process.execPath,
      [join(here, '_specChild.js'), '--config', file, 'plan'],
      { env: { ...process.env, LO_BENCH_RSS_FILE: rssFile, DOCKER_HOST: 'unix:///nonexistent/lo-bench.sock' }, maxBuffer: 64 * MiB },
      (err) => {
        const ms = performance.now() - t0;
        const child = JSON.parse(readFileSync(rssFile, 'utf8'));
        resolve({
          ms,
          cpuMs: child.cpuMs,
          code: child.code,
          rssMB: child.maxRssKiB / 1024,
          failed: err && err.code !== child.code ? err : undefined,
        });
      },
    );
  });
}

const { loadSpec } = await import('../dist/spec/loadSpec.js');
const { MAX_SPEC_ENTRIES } = await import('../dist/spec/parseSpec.js');

export async function run(report) {
  let baselineCpu;
  const dir = mkdtempSync(join(tmpdir(), 'lo-bench-spec-'));
  try {
    report.note(`lo plan on hostile spec files: each must exit 2 under ${TIME_TARGET_MS} ms and ${RSS_TARGET_MB} MB peak RSS`);
    report.note('(each run is a fresh node process; its CPU time (user+sys) is compared with lo plan on a valid spec, so node');
    report.note(' start-up and module loading, which a loaded machine and other helpers inflate, are not counted against the input;');
    report.note(' loadSpec in-process times the spec handling alone)');
    let i = 0;
    for (const [name, content] of Object.entries(inputs())) {
      const file = typeof content === 'string' ? join(dir, `in${i++}.yaml`) : content.path;
      if (typeof content === 'string') writeFileSync(file, content);
      const rssFile = join(dir, `rss${i}.json`);
      const samples = [];
      const cpu = [];
      let worstRss = 0;
      let code;
      for (let r = 0; r < 3; r++) {
        const res = await runLo(file, rssFile);
        if (res.failed) throw res.failed;
        samples.push(res.ms);
        cpu.push(res.cpuMs);
        worstRss = Math.max(worstRss, res.rssMB);
        code = res.code;
      }
      report.sample(`${name}: lo plan (exit ${code}), wall`, samples);
      const c = report.median(cpu);
      if (baselineCpu === undefined) {
        baselineCpu = c;
        report.value(`${name}: CPU time (user+sys), node start-up and module loading`, c, 'ms');
      } else {
        report.value(`${name}: CPU time over the valid baseline`, c - baselineCpu, 'ms', { target: TIME_TARGET_MS });
      }
      report.value(`${name}: peak RSS of the whole process`, worstRss, 'MB', { target: RSS_TARGET_MB });
      // The spec handling alone, in this process (file read, checks, YAML, schema, rules, error wording).
      const inProc = await report.time(`${name}: loadSpec in-process`, () => loadSpec({ config: file }).catch((e) => e), {
        runs: 3,
        warmup: 1,
      });
      report.value(`${name}: loadSpec in-process`, inProc.median, 'ms', { target: TIME_TARGET_MS });
      const wantCode = name.includes('baseline') ? 0 : 2;
      if (code !== wantCode) throw new Error(`${name}: lo plan exited ${code}, expected ${wantCode}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
