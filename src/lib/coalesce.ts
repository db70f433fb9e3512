// Group commit for hot statements: calls made in the same turn of the event loop run as one batch (one statement,
// one round trip, one WAL flush for all of them) instead of one each. Requests that arrive together (read from their
// sockets in one poll phase) reach the store before the check phase, so `setImmediate` closes the batch; nothing
// waits on a timer, and a lone call costs one extra turn of the loop (microseconds).

/**
 * Runs `runBatch` once per turn of the event loop with the inputs of every call made in that turn; each call gets
 * the output at its own index. When a batch of several fails, each of its inputs runs again alone, so one input that
 * makes the statement fail fails only its own call (a failed statement wrote nothing: it is one statement) — unless
 * `retryAlone(err)` says no: an error that leaves unknown whether the statement committed (the connection died before
 * the answer) must not be retried, or a retry would find its own work done and take it for someone else's.
 */
export function coalesce<I, O>(
  runBatch: (inputs: I[]) => Promise<O[]>,
  retryAlone: (err: unknown) => boolean = () => true,
): (input: I) => Promise<O> {
  interface Waiting {
    input: I;
    resolve(output: O): void;
    reject(err: unknown): void;
  }
  let waiting: Waiting[] = [];

  async function runAlone(w: Waiting): Promise<void> {
    try {
      const [output] = await runBatch([w.input]);
      w.resolve(output as O);
    } catch (err) {
      w.reject(err);
    }
  }

  async function flush(): Promise<void> {
    const batch = waiting;
    waiting = [];
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

  return (input) =>
    new Promise<O>((resolve, reject) => {
      if (waiting.length === 0) setImmediate(() => void flush());
      waiting.push({ input, resolve, reject });
    });
}
