/** How an unexpected value reads in an error message: its typed-array class, 'an Array', 'null' or its typeof. */
export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (ArrayBuffer.isView(x)) return x.constructor.name;
  if (Array.isArray(x)) return 'an Array';
  return typeof x;
}
