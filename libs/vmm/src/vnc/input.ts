/**
 * The machine's input devices as a remote console drives them, and the small queue that sits
 * in front of the keyboard.
 *
 * A PS/2 keyboard buffers a few dozen bytes; a VNC client pastes or auto-repeats faster than a
 * guest reads. Key events the keyboard cannot take yet wait here, in order, and are retried on
 * a timer — bounded in number and age, so a guest that never reads its keyboard costs a
 * bounded queue and a timer that stops, not memory or a busy loop.
 */

/** Buttons as the PS/2 mouse numbers them. */
export const BUTTON_LEFT = 0x01;
export const BUTTON_RIGHT = 0x02;
export const BUTTON_MIDDLE = 0x04;

export interface GuestInput {
  /** One key event as scan code set 1 bytes. False when the keyboard cannot take it now. */
  keyboard(set1: readonly number[]): boolean;
  /** Relative motion: `dx` right, `dy` down (screen directions), buttons as BUTTON_*. */
  mouseRelative(dx: number, dy: number, buttons: number): boolean;
  /**
   * Absolute position in [0, 1] × [0, 1] of the screen and wheel steps (positive: up), for
   * a tablet. False when no tablet is there or its driver is not up: use `mouseRelative`.
   */
  mouseAbsolute?(x: number, y: number, buttons: number, wheel: number): boolean;
}

export interface KeyQueueMetrics {
  /** key events given to the guest */
  delivered: number;
  /** key events that had to wait for room */
  deferred: number;
  /** key events dropped: the queue was full or they waited too long */
  dropped: number;
}

/** Events that may wait; past this the newest are dropped. */
export const KEY_QUEUE_LIMIT = 256;
/** How long an event may wait for a guest that does not read its keyboard. */
export const KEY_QUEUE_MAX_AGE_MS = 2000;
const RETRY_MS = 5;

export class KeyQueue {
  readonly metrics: KeyQueueMetrics = { delivered: 0, deferred: 0, dropped: 0 };
  #input: GuestInput | undefined;
  readonly #queue: { bytes: readonly number[]; at: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The devices to feed; undefined while there is no machine (between reboots). */
  setInput(input: GuestInput | undefined): void {
    this.#input = input;
    if (input === undefined) this.clear();
  }

  push(set1: readonly number[]): void {
    if (set1.length === 0) return;
    if (this.#queue.length === 0 && this.#input?.keyboard(set1)) {
      this.metrics.delivered++;
      return;
    }
    if (this.#queue.length >= KEY_QUEUE_LIMIT || this.#input === undefined) {
      this.metrics.dropped++;
      return;
    }
    this.metrics.deferred++;
    this.#queue.push({ bytes: set1, at: this.#now() });
    this.#schedule();
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Delivers what the keyboard takes now, drops what is too old; the timer calls it. */
  flush(): void {
    const now = this.#now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (this.#input?.keyboard(head.bytes)) {
        this.metrics.delivered++;
        this.#queue.shift();
        continue;
      }
      if (now - head.at > KEY_QUEUE_MAX_AGE_MS) {
        this.metrics.dropped++;
        this.#queue.shift();
        continue;
      }
      break;
    }
    if (this.#queue.length > 0) this.#schedule();
  }

  clear(): void {
    this.metrics.dropped += this.#queue.length;
    this.#queue.length = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, RETRY_MS);
    this.#timer.unref();
  }
}
