import type { IrqLine } from '../bus/device.js';

/**
 * An interrupt line for tests: it records every `set()` a device makes, so a test can
 * assert both the current level and that the device drove the line only on changes.
 */
export class FakeIrqLine implements IrqLine {
  /** the level of the last `set()`; a line starts low */
  level = false;
  /** every level passed to `set()`, in order */
  readonly history: boolean[] = [];

  set(level: boolean): void {
    this.history.push(level);
    this.level = level;
  }

  /** how many times the line went from low to high (the edges an ISA PIC latches) */
  get risingEdges(): number {
    let edges = 0;
    let previous = false;
    for (const level of this.history) {
      if (level && !previous) edges++;
      previous = level;
    }
    return edges;
  }

  /** true if some `set()` repeated the level the line already had */
  get hasRedundantSets(): boolean {
    let previous = false;
    for (const level of this.history) {
      if (level === previous) return true;
      previous = level;
    }
    return false;
  }

  /** forgets the history, keeping the level */
  clearHistory(): void {
    this.history.length = 0;
  }
}
