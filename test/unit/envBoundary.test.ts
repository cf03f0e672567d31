import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../../src/', import.meta.url).pathname;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

// process.env, process['env'], and destructuring `const { env } = process`
const ENV_READ = /\bprocess\s*(?:\.\s*env\b|\[\s*['"]env['"]\s*\])|\{[^}]*\benv\b[^}]*\}\s*=\s*process\b/;

/** The code without its comments (which may well say "never read process.env here"). */
const code = (text: string): string => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');

/** Where the environment may be read: main (which injects it) and runtime/ (what is injected). */
const MAY_READ_ENV = (f: string): boolean => f === 'cli/main.ts' || f.startsWith('runtime/');

const STREAM_USE = /\bprocess\s*\.\s*(?:stdout|stderr|stdin)\b/;

describe('the environment and the streams are injected once, at the top', () => {
  it('only src/cli/main.ts touches process.stdout, process.stderr and process.stdin', () => {
    const users = tsFiles(SRC)
      .filter((f) => STREAM_USE.test(code(readFileSync(f, 'utf8'))))
      .map((f) => relative(SRC, f));
    expect(users).toContain('cli/main.ts');
    expect(users.filter((f) => f !== 'cli/main.ts')).toEqual([]);
    expect(STREAM_USE.test('ora({ stream: process.stderr })')).toBe(true);
    expect(STREAM_USE.test('if (!process.stdin.isTTY) {')).toBe(true);
  });

  it('only src/cli/main.ts and src/runtime/ read process.env', () => {
    const readers = tsFiles(SRC)
      .filter((f) => ENV_READ.test(code(readFileSync(f, 'utf8'))))
      .map((f) => relative(SRC, f));
    // the guard must see main's read, or it could never fail
    expect(readers).toContain('cli/main.ts');
    expect(readers.filter((f) => !MAY_READ_ENV(f))).toEqual([]);
  });

  it('the pattern catches every read form', () => {
    for (const line of [
      'const h = process.env.DOCKER_HOST;',
      'function f(env = process.env) {}',
      "const e = process['env'];",
      'const { env } = process;',
      'process .env',
    ])
      expect(ENV_READ.test(line), line).toBe(true);
    expect(ENV_READ.test('const e = ctx.env; // the injected env')).toBe(false);
    expect(ENV_READ.test('process.exitCode = 1')).toBe(false);
    expect(ENV_READ.test(code('/** default: process.env */ const a = 1; // not process.env'))).toBe(false);
    expect(ENV_READ.test(code("const u = 'http://x'; const e = process.env;"))).toBe(true);
  });
});
