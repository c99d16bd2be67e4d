/**
 * How many of n weights (or units, or channels) a sparsity prunes: PyTorch's torch.nn.utils.prune rule,
 * round(sparsity * n) with Python's round (half to even), so l1_unstructured, global_unstructured
 * and ln_structured on the same weights prune exactly the same count.
 */
export function prunedCount(n: number, sparsity: number): number {
  const x = sparsity * n;
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
