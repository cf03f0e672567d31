import { describe, expect, it } from 'vitest';
import { HOP_HEADER, parseRequest } from '../../src/agent/registry/request.js';

describe('agent registry request parsing', () => {
  it('a tag pull from containerd: route, ns and no hop', () => {
    expect(parseRequest({ method: 'GET', url: '/v2/library/alpine/manifests/3.20?ns=docker.io', headers: {} })).toEqual({
      method: 'GET',
      pathname: '/v2/library/alpine/manifests/3.20',
      route: { kind: 'manifest', name: 'library/alpine', reference: '3.20', byDigest: false },
      ns: 'docker.io',
      hop: false,
    });
  });

  it('a blob asked by another agent is a hop', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const r = parseRequest({ method: 'HEAD', url: `/v2/team/app/blobs/${digest}`, headers: { [HOP_HEADER]: '1' } });
    expect(r).toMatchObject({ method: 'HEAD', route: { kind: 'blob', name: 'team/app', digest }, ns: null, hop: true });
  });

  it('paths outside the pull API have no route', () => {
    expect(parseRequest({ method: 'GET', url: '/metrics', headers: {} })).toMatchObject({ pathname: '/metrics', route: null });
    expect(parseRequest({ method: 'PUT', url: '/v2/team/app/blobs/uploads/', headers: {} })).toMatchObject({ method: 'PUT', route: null });
    expect(parseRequest({ method: 'GET', url: '/v2/', headers: {} }).route).toEqual({ kind: 'base' });
  });
});
