// Where a server's latency goes, seen from inside it (bench/token-paths.ts with BENCH_PROBE=1 preloads this into
// each server it starts, with `node --import`). On SIGUSR2 it writes one line, `probe: …`, to stdout about the time
// since the last signal, then starts over:
// - served: from the server's 'request' event to the response's 'finish', p50 / p99 / max, in ms. Set beside the load
//   generator's own figures, the difference is the time a request spends before the server reads it (an event loop
//   that is busy or not running) and after the response left (the kernel, the load generator's own loop);
// - loop delay: how late the event loop ran a 1-ms timer, p99 / max (work that held the loop, GC, the process not
//   getting a core);
// - GC: pauses, how many, their sum, the longest, and how many were over 5 ms.
// Plain JavaScript, as the servers under test run the built dist with node alone.
import http from 'node:http';
import { createHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const ms = (ns) => (ns / 1e6).toFixed(1);
let served = createHistogram();
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
let gc = { count: 0, total: 0, longest: 0, over5: 0 };

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    gc.total += e.duration;
    gc.longest = Math.max(gc.longest, e.duration);
    if (e.duration > 5) gc.over5++;
  }
}).observe({ entryTypes: ['gc'] });

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, _req, res) {
  if (event === 'request') {
    const t0 = process.hrtime.bigint();
    res.once('finish', () => served.record(Math.max(1, Number(process.hrtime.bigint() - t0))));
  }
  // biome-ignore lint/complexity/noArguments: passes every argument of any event on unchanged
  return emit.apply(this, arguments);
};

process.on('SIGUSR2', () => {
  const p = (h, q) => ms(h.count > 0 ? h.percentile(q) : 0);
  process.stdout.write(
    `probe: served ${served.count}, p50 ${p(served, 50)} / p99 ${p(served, 99)} / max ${p(served, 100)} ms; ` +
      `loop delay p99 ${p(loop, 99)} / max ${p(loop, 100)} ms; ` +
      `GC ${gc.count} pauses, ${gc.total.toFixed(0)} ms in all, longest ${gc.longest.toFixed(1)} ms, ${gc.over5} over 5 ms\n`,
  );
  served = createHistogram();
  loop.reset();
  gc = { count: 0, total: 0, longest: 0, over5: 0 };
});
