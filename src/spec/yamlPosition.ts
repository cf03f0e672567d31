import { MAX_ECHO, shownBare } from './display.js';
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';

/** One step of a path into the spec document: a mapping key or a list index. */
export type Segment = string | number;

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const REGISTRY_KEY = /^[A-Za-z0-9*._:/-]{1,80}$/;

/**
 * `['spec','registries','mirrors',2,'name']` -> `spec.registries.mirrors[2].name`. A key from the file is
 * shown as messages show values: control characters escaped, cut after MAX_ECHO characters.
 */
export function formatPath(segments: Segment[]): string {
  return segments.reduce<string>((acc, seg) => {
    if (typeof seg === 'number') return `${acc}[${seg}]`;
    const s = shownBare(seg, MAX_ECHO);
    // A key that is not a plain word (a registry name such as docker.io, or "*") in brackets, so the path reads as one.
    if (acc && !PLAIN_KEY.test(seg) && REGISTRY_KEY.test(seg)) return `${acc}["${seg}"]`;
    return acc ? `${acc}.${s}` : s;
  }, '');
}

/** Line of the deepest node along `path` that exists in the document (a missing key points at its parent). */
export function lineOf(doc: Document, lc: LineCounter, path: Segment[]): number | undefined {
  let node: unknown = doc.contents;
  let best: number | undefined = rangeLine(node, lc);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = keyIndex(node).get(seg);
      if (!pair) break;
      best = rangeLine(pair.key, lc) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      best = rangeLine(node, lc) ?? best;
    } else break;
  }
  return best;
}

/** Each mapping's pairs by scalar key (first one wins), built once: a file with many issues stays linear. */
const keyIndexes = new WeakMap<YAMLMap, Map<unknown, Pair>>();
function keyIndex(map: YAMLMap): Map<unknown, Pair> {
  let index = keyIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) if (isPair(p) && isScalar(p.key) && !index.has(p.key.value)) index.set(p.key.value, p);
    keyIndexes.set(map, index);
  }
  return index;
}

function rangeLine(node: unknown, lc: LineCounter): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range ? lc.linePos(range[0]).line : undefined;
}

/** The YAML path of the node at `offset` in the source (as deep as the document's maps and lists go). */
export function pathAt(doc: Document, offset: number): Segment[] {
  const path: Segment[] = [];
  let node: unknown = doc.contents;
  const within = (n: unknown): boolean => {
    const r = (n as Node | undefined)?.range;
    return !!r && r[0] <= offset && offset < Math.max(r[2], r[1] + 1);
  };
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (within(p.key) || within(p.value)));
      if (!pair || !isScalar(pair.key)) break;
      path.push(String(pair.key.value));
      if (within(pair.key)) break;
      node = pair.value;
    } else if (isSeq(node)) {
      const i = node.items.findIndex(within);
      if (i < 0) break;
      path.push(i);
      node = node.items[i];
    } else break;
  }
  return path;
}
