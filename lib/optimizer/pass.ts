import type { Dataset } from '../data/dataset';
import type { Graph } from '../model/graph';
import type { Target } from './target';

/** What a pass may use besides the graph. */
export interface PassContext {
  calibration?: Dataset;
  evaluation?: Dataset;
  /** The device the model is optimized for; passes take their defaults from it. */
  target?: Target;
}

/** An optimization pass: a pure function from graph to a new graph. */
export type Pass = (graph: Graph, ctx: PassContext) => Graph | Promise<Graph>;
