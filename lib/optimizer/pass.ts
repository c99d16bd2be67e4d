import type { Dataset } from '../data/dataset';
import type { Graph } from '../model/graph';

/** What a pass may use besides the graph. */
export interface PassContext {
  calibration?: Dataset;
  evaluation?: Dataset;
}

/** An optimization pass: a pure function from graph to a new graph. */
export type Pass = (graph: Graph, ctx: PassContext) => Graph | Promise<Graph>;
