import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

/** One step of a path into the spec document: a mapping key or a list index. */
export type Segment = string | number;

/** `['spec','registries','mirrors',2,'name']` -> `spec.registries.mirrors[2].name` */
export function formatPath(segments: Segment[]): string {
  return segments.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

/** Line of the deepest node along `path` that exists in the document (a missing key points at its parent). */
export function lineOf(doc: Document, lc: LineCounter, path: Segment[]): number | undefined {
  let node: unknown = doc.contents;
  let best: number | undefined = rangeLine(node, lc);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
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

function rangeLine(node: unknown, lc: LineCounter): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range ? lc.linePos(range[0]).line : undefined;
}
