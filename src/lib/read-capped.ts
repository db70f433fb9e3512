// Reads a fetch response's body up to a byte cap: what every outbound call Latchkey makes (upstream providers, the
// connector doctor) uses, so a peer can never make it buffer more than it expects.

/** The whole body, or undefined when it is larger than `maxBytes` (the rest is not read; the stream is cancelled). */
export async function readCapped(res: Response, maxBytes: number): Promise<Uint8Array | undefined> {
  if (!res.body) return new Uint8Array();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
