/** Parsing numeric command-line options into checked values (EdgeOptError E_ARGUMENT on bad input). */
import { EdgeOptError } from '../errors';

export function num(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new EdgeOptError('E_ARGUMENT', `${flag} must be a number, got '${value}'`);
  return n;
}

export function intList(value: string, flag: string): number[] {
  return value.split(',').map((v) => {
    const n = num(v, flag);
    if (!(Number.isInteger(n) && n > 0)) throw new EdgeOptError('E_ARGUMENT', `${flag} takes positive integers, got '${v}'`);
    return n;
  });
}
