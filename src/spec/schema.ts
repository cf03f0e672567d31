import { readFileSync } from 'node:fs';

/** Path of the JSON Schema shipped with the package (same relative path from src/ and dist/). */
const SCHEMA_PATH = new URL('../../schemas/cluster.lok8s.schema.json', import.meta.url);

// The schema file is the single source of truth: editors read it through the yaml-language-server comment,
// and ajv compiles the same bytes here.
export const specSchema: Record<string, unknown> = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));

/** The parts of a JSON Schema node the spec code walks. */
export interface SchemaNode {
  type?: string;
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}
