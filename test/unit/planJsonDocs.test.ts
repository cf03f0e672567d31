import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { LABELS } from '../../src/plan/labels.js';
import { planCluster } from '../../src/plan/planCluster.js';

/** Every field path of a JSON value, arrays as `[]`; `labels` maps are one field (their keys are listed apart). */
function fieldPaths(value: unknown, path = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) fieldPaths(v, `${path}[]`, out);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = path ? `${path}.${k}` : k;
      out.add(p);
      if (k !== 'labels') fieldPaths(v, p, out);
    }
  }
  return out;
}

describe('docs/plan-json.md', () => {
  it('documents every field and label of the plan JSON', async () => {
    const doc = await readFile(new URL('../../docs/plan-json.md', import.meta.url), 'utf8');
    // A spec that fills every optional field: credentials, host ports, P2P, shared and project mirrors.
    const spec = parseSpec(
      `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: docs
spec:
  nodes:
    workers: 2
    hostPorts:
      - containerPort: 80
        hostPort: 8080
  registries:
    mirrors:
      - name: corp
        url: https://registry.corp.test
        credentials:
          usernameEnv: CORP_USER
          passwordEnv: CORP_TOKEN
        tls: { caFile: corp-ca.pem }
    hosts:
      docker.io:
        endpoints:
          - url: https://artifactory.corp.test/v2/docker-remote
            tls: { caFile: corp-ca.pem, certFile: client.pem, keyFile: client-key.pem }
            headers: { Authorization: { env: ART_AUTH } }
`,
      { file: 'docs.yaml' },
    );
    const plan = planCluster(spec, { paths: { stateDir: '/s', caRoot: '/c' } });
    const json = JSON.parse(JSON.stringify(plan));
    const undocumented = [...fieldPaths(json)].filter((p) => !doc.includes(`\`${p}\``));
    expect(undocumented).toEqual([]);
    for (const label of Object.values(LABELS)) expect(doc).toContain(`\`${label}\``);
    for (const kind of new Set(plan.files.map((f) => f.kind))) expect(doc).toContain(`\`${kind}\``);
  });
});
