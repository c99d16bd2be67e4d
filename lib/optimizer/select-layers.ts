/** The nodes a pass applies to: all of them, or the named ones (every name must exist). */
import { EdgeOptError } from '../errors';
import type { Graph, GraphNode } from '../model/graph';

export function selectLayers(g: Graph, layers: readonly string[] | undefined, pass: string): GraphNode[] {
  if (layers === undefined) return g.nodes;
  if (!Array.isArray(layers)) throw new EdgeOptError('E_ARGUMENT', `${pass}: layers must be an array of node names`);
  const missing = layers.filter((name) => !g.nodes.some((n) => n.name === name));
  if (missing.length)
    throw new EdgeOptError('E_NOT_FOUND', `${pass}: no node named ${missing.map((m) => `'${m}'`).join(', ')} in '${g.name}'`);
  return g.nodes.filter((n) => layers.includes(n.name));
}
