#!/usr/bin/env node
/**
 * `npm run bench`: runs every section in bench/*.js (this file and files starting with `_` excepted), in name
 * order, each exporting `export async function run(report)`. `node bench/run.js registry p2p` runs only the
 * named sections. Set BENCH_JSON=FILE to also write every measurement as JSON.
 *
 * The `report` API (one instance for the whole run):
 *   report.heading(text)                       a sub-heading inside the current section
 *   report.note(text)                          a free-form line (what was measured, caveats)
 *   await report.time(label, fn, { runs, warmup })
 *                                              runs `fn` `runs` times (default 5) after `warmup` runs (default 0),
 *                                              prints the median (and min/max), returns { label, samples, median } in ms
 *   report.sample(label, samplesMs)            records samples measured elsewhere (e.g. interleaved runs); same return
 *   report.median(numbers)                     the median of an array
 *   report.ratio(label, a, b, { target, op })  prints a/b (a and b: numbers or results of time/sample) against a
 *                                              target (`op` '<=' default, or '>='); returns the ratio
 *   report.value(label, value, unit, { target, op })
 *                                              a single number (MiB, ms, MiB/s) with an optional target
 * At the end a summary lists every ratio and value with its target and ok / MISSED. The exit code is 1 when a
 * section failed with an error (targets missed are reported, not fatal).
 */
import { readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (n) => (Number.isFinite(n) ? (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2)) : String(n));

export function createReport(out = process.stdout) {
  const checks = [];
  const records = [];
  let section = '';
  const line = (text = '') => out.write(`${text}\n`);
  const numberOf = (x) => (typeof x === 'number' ? x : x.median);
  const verdict = (value, target, op = '<=') =>
    target === undefined ? '' : (op === '>=' ? value >= target : value <= target) ? 'ok' : 'MISSED';
  const sample = (label, samples) => {
    const result = { label, samples, median: median(samples) };
    records.push({ section, kind: 'time', ...result });
    line(
      `  ${label.padEnd(58)} median ${fmt(result.median).padStart(8)} ms   (n=${samples.length}, min ${fmt(Math.min(...samples))}, max ${fmt(Math.max(...samples))})`,
    );
    return result;
  };
  return {
    section(title) {
      section = title;
      line('');
      line(`== ${title} ==`);
    },
    heading(text) {
      line(`-- ${text}`);
    },
    note(text) {
      line(`  ${text}`);
    },
    median,
    sample,
    async time(label, fn, { runs = 5, warmup = 0 } = {}) {
      for (let i = 0; i < warmup; i++) await fn(i);
      const samples = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await fn(i);
        samples.push(performance.now() - t);
      }
      return sample(label, samples);
    },
    ratio(label, a, b, { target, op = '<=' } = {}) {
      const r = numberOf(a) / numberOf(b);
      const v = verdict(r, target, op);
      checks.push({ section, label, value: r, unit: 'x', target, op, verdict: v });
      records.push({ section, kind: 'ratio', label, value: r, target, op, verdict: v });
      line(`  ${label.padEnd(58)} ratio  ${fmt(r).padStart(8)}      ${target === undefined ? '' : `(target ${op} ${target}: ${v})`}`);
      return r;
    },
    value(label, value, unit, { target, op = '<=' } = {}) {
      const v = verdict(value, target, op);
      checks.push({ section, label, value, unit, target, op, verdict: v });
      records.push({ section, kind: 'value', label, value, unit, target, op, verdict: v });
      line(`  ${label.padEnd(58)} ${fmt(value).padStart(15)} ${unit}   ${target === undefined ? '' : `(target ${op} ${target}: ${v})`}`);
      return value;
    },
    summary() {
      line('');
      line('== summary ==');
      for (const c of checks) {
        line(
          `  ${`[${c.section}] ${c.label}`.padEnd(70)} ${fmt(c.value).padStart(8)} ${c.unit === 'x' ? 'x' : c.unit}  ${c.target === undefined ? '' : `${c.op} ${c.target}  ${c.verdict}`}`,
        );
      }
      return { checks, records };
    },
  };
}

async function main() {
  const only = process.argv.slice(2);
  const files = (await readdir(here))
    .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
    .filter((f) => only.length === 0 || only.includes(basename(f, '.js')))
    .sort();
  const report = createReport();
  let failed = false;
  for (const f of files) {
    report.section(basename(f, '.js'));
    const started = performance.now();
    try {
      const mod = await import(pathToFileURL(join(here, f)).href);
      await mod.run(report);
    } catch (err) {
      failed = true;
      report.note(`FAILED: ${err?.stack ?? err}`);
    }
    report.note(`(section took ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  const { records } = report.summary();
  if (process.env.BENCH_JSON) await writeFile(process.env.BENCH_JSON, JSON.stringify(records, null, 2));
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
