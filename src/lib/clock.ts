// Time is injected everywhere a lifetime is checked, so tests move it instead of sleeping.
export interface Clock {
  now(): Date;
  /** Waits this long (see `sleep`); a clock without it waits on a real timer. */
  sleep?(seconds: number): Promise<void>;
}

export const systemClock: Clock = { now: () => new Date() };

/** Waits `seconds` on the clock's own time: real time, or a ManualClock's (which moves forward at once). */
export function sleep(clock: Clock, seconds: number): Promise<void> {
  if (seconds <= 0) return Promise.resolve();
  if (clock.sleep) return clock.sleep(seconds);
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

/** A clock tests can move forward. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date | number = Date.now()) {
    this.t = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
  /** A wait on a manual clock is the clock moving forward by that much, at once. */
  sleep(seconds: number): Promise<void> {
    this.advance(seconds);
    this.slept.push(seconds);
    return Promise.resolve();
  }
  /** Every wait asked of this clock, in seconds, in order (tests read it). */
  readonly slept: number[] = [];
}

export function addSeconds(d: Date, seconds: number): Date {
  return new Date(d.getTime() + seconds * 1000);
}
