import { describe, expect, it } from 'vitest';
import { chooseEvictions, lastPulls, type RepoUsage } from '../../src/apply/gc.js';
import { parseSize, SIZE_PATTERN, sizeBytes } from '../../src/spec/size.js';
import { specSchema } from '../../src/spec/schema.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { LoError } from '../../src/errors/loError.js';

const repo = (repository: string, bytes: number, lastAccess: string): RepoUsage => ({
  repository,
  bytes,
  lastAccess,
  source: 'log',
  manifests: [`sha256:${repository}`],
});

describe('lo registry gc: choices', () => {
  it('removes least recently used repositories first, only until the total fits the budget', () => {
    const repos = [
      repo('new', 300, '2026-12-02T05:00:00Z'),
      repo('old', 300, '2026-11-01T00:00:00Z'),
      repo('mid', 300, '2026-11-20T00:00:00Z'),
    ];
    expect(chooseEvictions(repos, 900, 650).remove.map((r) => r.repository)).toEqual(['old']);
    expect(chooseEvictions(repos, 900, 300).remove.map((r) => r.repository)).toEqual(['old', 'mid']);
    expect(chooseEvictions(repos, 900, 0).remove.map((r) => r.repository)).toEqual(['old', 'mid', 'new']);
    expect(chooseEvictions(repos, 900, 900).remove).toEqual([]);
    expect(chooseEvictions(repos, 900, null).remove).toEqual([]);
  });

  it('reads the last successful manifest pull per repository from timestamped access-log lines', () => {
    const log = [
      '2026-12-02T04:38:38.1Z 10.1.0.3 - - [02/Dec/2026:04:38:38 +0000] "GET /v2/team/app/manifests/v1?ns=x.test HTTP/1.1" 200 427 "" "containerd"',
      '2026-12-02T04:40:00.0Z 10.1.0.3 - - [02/Dec/2026:04:40:00 +0000] "HEAD /v2/team/app/manifests/sha256:abc HTTP/1.1" 200 0 "" "containerd"',
      '2026-12-02T04:41:00.0Z 10.1.0.3 - - [02/Dec/2026:04:41:00 +0000] "GET /v2/library/busybox/manifests/latest HTTP/1.1" 404 0 "" "containerd"',
      '2026-12-02T04:39:00.0Z 10.1.0.3 - - [02/Dec/2026:04:39:00 +0000] "GET /v2/a/b/c/manifests/v2 HTTP/1.1" 200 10 "" "x"',
      '2026-12-02T04:42:00.0Z time="..." level=info msg="response completed" http.request.method=GET http.request.uri="/v2/zzz/manifests/v1"',
    ].join('\n');
    expect(Object.fromEntries(lastPulls(log))).toEqual({ 'team/app': '2026-12-02T04:40:00.0Z', 'a/b/c': '2026-12-02T04:39:00.0Z' });
  });
});

describe('spec.registries.cache.maxSize', () => {
  it('parses binary and decimal units', () => {
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('500MB')).toBe(500e6);
    expect(parseSize('1.5 KiB')).toBe(1536);
    expect(parseSize('2048')).toBe(2048);
    expect(() => parseSize('lots')).toThrow(LoError);
    expect(() => parseSize('10 parsecs')).toThrow(/is not a size/);
  });

  const doc = (cache: string): string =>
    `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n  registries:\n    cache:\n${cache}`;
  it('reaches the spec in bytes; absent means unlimited', () => {
    expect(parseSpec(doc('      maxSize: 20GiB\n'), { file: 't.yaml' }).registries.cache).toEqual({ maxSizeBytes: 20 * 1024 ** 3 });
    expect(parseSpec(doc('      {}\n'), { file: 't.yaml' }).registries.cache).toBeUndefined();
  });
  it("the schema's pattern admits only sizes the parser reads", () => {
    const s = specSchema as {
      properties: { spec: { properties: { registries: { properties: { cache: { properties: { maxSize: { pattern: string } } } } } } } };
    };
    expect(s.properties.spec.properties.registries.properties.cache.properties.maxSize.pattern).toBe(SIZE_PATTERN);
    for (const ok of ['1', '1.5GiB', '20 GB', '3B']) expect(sizeBytes(ok)).not.toBeNull();
  });
  it('a bad size is rejected by the schema with the field named', () => {
    expect(() => parseSpec(doc('      maxSize: huge\n'), { file: 't.yaml' })).toThrow(/maxSize/);
    expect(() => parseSpec(doc('      maxSize: 1GiB\n      ttl: 7d\n'), { file: 't.yaml' })).toThrow(/ttl/);
  });
});
