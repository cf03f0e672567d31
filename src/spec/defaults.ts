import { specSchema, type SchemaNode } from './schema.js';

/**
 * The `default` the JSON schema gives a field, by dotted path; `name[]` steps into list items. The schema is
 * the one place a default is written: ajv applies them to a document (`useDefaults`), and the code that
 * needs a default value reads it from here.
 */
function schemaDefault(path: string): unknown {
  let node: SchemaNode | undefined = specSchema as SchemaNode;
  for (const key of path.split('.')) {
    node = key.endsWith('[]') ? node?.properties?.[key.slice(0, -2)]?.items : node?.properties?.[key];
  }
  if (node?.default === undefined) throw new Error(`schemas/cluster.lok8s.schema.json has no default at ${path}`);
  return structuredClone(node.default);
}

interface DefaultMirror {
  name: string;
  url: string;
  registry: string;
}

/** The defaults the cross-field rules and the planner need by value, read once from the schema. */
export const SPEC_DEFAULTS = {
  /** Also the example in messages about the field. */
  kubernetesVersion: schemaDefault('spec.kubernetes.version') as string,
  sharedNetwork: {
    name: schemaDefault('spec.registries.shared.network.name') as string,
    cidr: schemaDefault('spec.registries.shared.network.cidr') as string,
  },
  /** The four default mirrors, in the order that gives them .2-.5 on an empty shared network. */
  mirrors: schemaDefault('spec.registries.mirrors') as readonly DefaultMirror[],
  hostPort: {
    listenAddress: schemaDefault('spec.nodes.hostPorts[].listenAddress') as string,
    protocol: schemaDefault('spec.nodes.hostPorts[].protocol') as string,
  },
  p2p: {
    port: schemaDefault('spec.registries.p2p.port') as number,
    routerPort: schemaDefault('spec.registries.p2p.routerPort') as number,
    metricsPort: schemaDefault('spec.registries.p2p.metricsPort') as number,
    dataPort: schemaDefault('spec.registries.p2p.dataPort') as number,
    dialTimeout: schemaDefault('spec.registries.p2p.dialTimeout') as string,
  },
} as const;

// Derived defaults: the schema cannot hold them as constants, each is one named rule.

/** p2p.enabled: the agent runs when there is more than one node to pull from. */
export function defaultP2PEnabled(nodes: { controlPlane: number; workers: number }): boolean {
  return nodes.controlPlane + nodes.workers > 1;
}

/** A mirror's `registry`: fixed for the names of the default mirrors, else the URL's host[:port]. */
export function defaultRegistryFor(name: string, url: string): string | undefined {
  const known = SPEC_DEFAULTS.mirrors.find((m) => m.name === name);
  if (known) return known.registry;
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

/**
 * `spec:` or `nodes:` with nothing under it is YAML null; treat an empty section as absent so its defaults
 * apply, as the user meant. Only mapping sections: `mirrors:` (null) stays an error, since "none" is `[]`.
 */
export function dropEmptySections(data: Record<string, unknown>, schema: SchemaNode = specSchema as SchemaNode): void {
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    if (sub.type !== 'object') continue;
    const value = data[key];
    if (value === null && sub.default !== undefined) delete data[key];
    else if (typeof value === 'object' && value !== null && !Array.isArray(value)) dropEmptySections(value as Record<string, unknown>, sub);
  }
}
