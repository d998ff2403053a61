/** Small statistics over repeated measurements. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarize(xs: readonly number[]): Summary | null {
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** Rounds to `decimals` places for JSON (measurements are nowhere near that precise). */
export function round(x: number, decimals = 3): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** [a, b, c] rotated by i: each round starts with a different VMM so none always goes first. */
export function rotate<T>(xs: readonly T[], i: number): T[] {
  const k = i % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}
