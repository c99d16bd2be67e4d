/**
 * JSON from files and peers, parsed only after one linear scan of its text has
 * bounded what the parse would build. JSON.parse has no limits of its own: a
 * header of 100 MB of '[' or a million empty entries costs seconds and
 * gigabytes before any check runs. The scan counts nesting depth and values,
 * and refuses duplicate keys in any object (JSON.parse keeps the last one
 * silently, so two readers of one file could see two different tensors).
 * The scan is not a validator: whatever it lets through, JSON.parse still checks.
 */

export interface JsonLimits {
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
  /** Values of any kind (objects, arrays, strings, numbers, literals), keys not counted. */
  maxValues: number;
}

interface Open {
  keys: Set<string> | null; // null for an array
  expectKey: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Index just past the string that starts at `i` (a quote), or text.length if it never ends. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return text.length;
}

/**
 * Throws (through `fail`) when the text nests deeper than maxDepth, holds more
 * than maxValues values, or repeats a key within one object; else returns JSON.parse(text).
 */
export function parseJsonGuarded(text: string, limits: JsonLimits, fail: (message: string) => never): unknown {
  const stack: Open[] = [];
  let values = 0;
  const value = () => {
    if (++values > limits.maxValues) fail(`JSON holds more than ${limits.maxValues} values`);
  };
  for (let i = 0; i < text.length;) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '{' || c === '[') {
      value();
      if (stack.length >= limits.maxDepth) fail(`JSON nests deeper than ${limits.maxDepth} levels`);
      stack.push({ keys: c === '{' ? new Set() : null, expectKey: c === '{' });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === ',') {
      if (top?.keys) top.expectKey = true;
      i++;
    } else if (c === '"') {
      const end = stringEnd(text, i);
      if (top?.keys && top.expectKey) {
        const raw = text.slice(i + 1, end - 1);
        let key = raw;
        if (raw.includes('\\')) {
          try {
            key = JSON.parse(text.slice(i, end)) as string;
          } catch {
            // malformed: JSON.parse of the whole text reports it
          }
        }
        if (top.keys.has(key)) fail(`JSON repeats the key ${JSON.stringify(key.slice(0, 80))} in one object`);
        top.keys.add(key);
        top.expectKey = false;
      } else {
        value();
      }
      i = end;
    } else if (c === ':' || c === ' ' || c === '\n' || c === '\r' || c === '\t') {
      i++;
    } else {
      value(); // a number or literal: skip to the next delimiter
      while (i < text.length && !',:]}" \n\r\t'.includes(text[i])) i++;
      if (top?.keys) top.expectKey = false;
    }
  }
  return JSON.parse(text);
}
