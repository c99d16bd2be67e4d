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

/** Characters that end a number or literal (and so start the next token). */
const DELIMITER = new Uint8Array(128);
for (const c of ',:[]{}" \n\r\t') DELIMITER[c.charCodeAt(0)] = 1;

/** Index just past the string that starts at `i` (a quote), or text.length if it never ends. */
function stringEnd(text: string, i: number): number {
  for (let j = text.indexOf('"', i + 1); j >= 0; j = text.indexOf('"', j + 1)) {
    let slashes = 0;
    while (text.charCodeAt(j - 1 - slashes) === 0x5c) slashes++;
    if (slashes % 2 === 0) return j + 1;
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
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    switch (c) {
      case 0x7b: // {
      case 0x5b: // [
        value();
        if (stack.length >= limits.maxDepth) fail(`JSON nests deeper than ${limits.maxDepth} levels`);
        stack.push({ keys: c === 0x7b ? new Set() : null, expectKey: c === 0x7b });
        i++;
        break;
      case 0x7d: // }
      case 0x5d: // ]
        stack.pop();
        i++;
        break;
      case 0x2c: // ,
        if (top?.keys) top.expectKey = true;
        i++;
        break;
      case 0x22: {
        const end = stringEnd(text, i);
        if (top?.keys && top.expectKey) {
          const key = keyOf(text, i, end);
          if (top.keys.has(key)) fail(`JSON repeats the key ${JSON.stringify(key.slice(0, 80))} in one object`);
          top.keys.add(key);
          top.expectKey = false;
        } else {
          value();
        }
        i = end;
        break;
      }
      case 0x3a: // :
      case 0x20:
      case 0x0a:
      case 0x0d:
      case 0x09:
        i++;
        break;
      default: // a number or literal: skip to the next delimiter
        value();
        do i++;
        while (i < text.length && !(text.charCodeAt(i) < 128 && DELIMITER[text.charCodeAt(i)]));
        if (top?.keys) top.expectKey = false;
    }
  }
  return JSON.parse(text);
}

/** The key a string token at [i, end) stands for ("a" and "\u0061" are one key). */
function keyOf(text: string, i: number, end: number): string {
  const raw = text.slice(i + 1, end - 1);
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(text.slice(i, end)) as string;
  } catch {
    return raw; // malformed: JSON.parse of the whole text reports it
  }
}
