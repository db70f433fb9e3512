// Group commit for hot statements: calls made in the same turn of the event loop run as one batch (one statement,
// one round trip, one WAL flush for all of them) instead of one each. Requests that arrive together (read from their
// sockets in one poll phase) reach the store before the check phase, so `setImmediate` closes the batch; nothing
// waits on a timer, and a lone call costs one extra turn of the loop (microseconds). With `maxInFlight`, while that
// many batches are under way new calls wait for one of them to return, so under load the batches grow with the load
// instead of the number of statements (as lib/batch-loader.ts does for reads): a busy pool then queues a few large
// statements rather than many small ones, each its own round trip, commit and wake-up of a database process.

export interface CoalesceOptions {
  /** An error after which a batch's members must not run again alone (default: any error allows it). */
  retryAlone?: (err: unknown) => boolean;
  /** The most calls in one batch; a batch that reaches it goes out at once (default: no bound). */
  maxBatch?: number;
  /** The most batches under way at once; further calls wait for one to return (default: no bound). */
  maxInFlight?: number;
}

/**
 * Runs `runBatch` once per turn of the event loop with the inputs of every call made in that turn; each call gets
 * the output at its own index. When a batch of several fails, each of its inputs runs again alone, so one input that
 * makes the statement fail fails only its own call (a failed statement wrote nothing: it is one statement) — unless
 * `retryAlone(err)` says no: an error that leaves unknown whether the statement committed (the connection died before
 * the answer) must not be retried, or a retry would find its own work done and take it for someone else's. A call
 * always runs in a batch sent after it was made.
 */
export function coalesce<I, O>(
  runBatch: (inputs: I[]) => Promise<O[]>,
  { retryAlone = () => true, maxBatch = Infinity, maxInFlight = Infinity }: CoalesceOptions = {},
): (input: I) => Promise<O> {
  interface Waiting {
    input: I;
    resolve(output: O): void;
    reject(err: unknown): void;
  }
  const waiting: Waiting[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let inFlight = 0;

  async function runAlone(w: Waiting): Promise<void> {
    try {
      const [output] = await runBatch([w.input]);
      w.resolve(output as O);
    } catch (err) {
      w.reject(err);
    }
  }

  async function run(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return runAlone(batch[0]!);
    let outputs: O[];
    try {
      outputs = await runBatch(batch.map((w) => w.input));
    } catch (err) {
      if (retryAlone(err)) await Promise.all(batch.map(runAlone));
      else for (const w of batch) w.reject(err);
      return;
    }
    for (const [i, w] of batch.entries()) w.resolve(outputs[i] as O);
  }

  function flush(): void {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    // At the bound, the calls wait: the next batch to return sends them.
    while (waiting.length > 0 && inFlight < maxInFlight) {
      const batch = waiting.splice(0, maxBatch);
      inFlight++;
      void run(batch).finally(() => {
        inFlight--;
        flush();
      });
    }
  }

  return (input) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ input, resolve, reject });
      if (waiting.length >= maxBatch) flush();
      else scheduled ??= setImmediate(flush);
    });
}
