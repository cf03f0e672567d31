import { Readable } from 'node:stream';
import type { Stream } from '@libp2p/interface';
import { lpStream } from 'it-length-prefixed-stream';
import type { Uint8ArrayList } from 'uint8arraylist';
import { parseOciPath } from './ociPath.js';
import type { PeerRequest, PeerResponse } from './router.js';

/**
 * lo's agent-to-agent pull protocol. It runs only on libp2p connections, which the cluster's pre-shared key
 * (pnet) and noise already protect: a container without the key cannot complete a handshake, so it can neither
 * open this stream nor read one. Per stream, one request:
 *   request   one length-prefixed JSON frame {method, path, headers}, then the requester closes its write side;
 *   response  one length-prefixed JSON frame {status, headers}, then the raw body until the stream ends.
 * A stream that ends early or is reset is a failed body (the relay verifies the digest and fails over anyway).
 */
export const OCI_PROTOCOL = '/lo/oci/1.0.0';
/** Request and response heads are a path and a few headers. */
const MAX_HEAD_BYTES = 16 << 10;
const REQUEST_HEADERS = ['accept', 'range'];

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
const bytesOf = (c: Uint8Array | Uint8ArrayList): Buffer => {
  const u = c instanceof Uint8Array ? c : c.subarray();
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
};

function stringRecord(v: unknown, allowed: readonly string[] | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, val] of Object.entries(v)) {
    const name = k.toLowerCase();
    if (typeof val === 'string' && (allowed === null || allowed.includes(name))) out[name] = val;
  }
  return out;
}

/** The request a peer sent, or null when it is not a pull of a manifest or a blob. */
export function parsePeerRequest(frame: Uint8Array): PeerRequest | null {
  let v: { method?: unknown; path?: unknown; headers?: unknown };
  try {
    v = JSON.parse(Buffer.from(frame).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  return peerRequestOf(v.method, v.path, v.headers);
}

/**
 * A pull of a manifest or a blob, or null: GET/HEAD of `/v2/<name>/(manifests|blobs)/<ref>`, only `?ns=` kept
 * and only `accept` and `range` headers. Both peer transports (the stream and the TLS-PSK data port) admit
 * requests through it.
 */
export function peerRequestOf(method: unknown, path: unknown, headers: unknown): PeerRequest | null {
  if (method !== 'GET' && method !== 'HEAD') return null;
  if (typeof path !== 'string' || !path.startsWith('/v2/')) return null;
  let url: URL;
  try {
    url = new URL(path, 'http://peer');
  } catch {
    return null;
  }
  const route = parseOciPath(url.pathname);
  if (!route || route.kind === 'base') return null;
  const ns = url.searchParams.get('ns');
  const clean = url.pathname + (ns !== null ? `?ns=${encodeURIComponent(ns)}` : '');
  return { method, path: clean, headers: stringRecord(headers, REQUEST_HEADERS) };
}

/**
 * The body after the response head: read only as fast as the consumer reads (back-pressure reaches the peer
 * through yamux's window), an error when the stream is reset or pauses longer than `idleMs`, and destroying it
 * resets the stream.
 */
function bodyOf(stream: Pick<Stream, 'source' | 'abort' | 'close'>, idleMs: number): Readable {
  const it = (stream.source as AsyncIterable<Uint8Array | Uint8ArrayList>)[Symbol.asyncIterator]();
  let reading = false;
  let timer: NodeJS.Timeout | undefined;
  const body = new Readable({
    read() {
      if (reading) return;
      reading = true;
      void (async () => {
        try {
          for (;;) {
            timer = setTimeout(() => stream.abort(new Error(`peer sent nothing for ${idleMs} ms`)), idleMs);
            const n = await it.next();
            clearTimeout(timer);
            if (n.done) {
              body.push(null);
              void stream.close().catch(() => {});
              return;
            }
            if (!body.push(bytesOf(n.value))) return;
          }
        } catch (err) {
          clearTimeout(timer);
          body.destroy(err as Error);
        } finally {
          reading = false;
        }
      })();
    },
    destroy(err, cb) {
      clearTimeout(timer);
      stream.abort(err ?? new Error('body abandoned'));
      cb(err);
    },
  });
  return body;
}

/** Sends `req` on a fresh stream and returns the peer's answer; the head must arrive within `timeoutMs`. */
export async function fetchOverStream(stream: Stream, req: PeerRequest, timeoutMs: number, signal: AbortSignal): Promise<PeerResponse> {
  const lp = lpStream(stream, { maxDataLength: MAX_HEAD_BYTES });
  const head = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  let status: number;
  let headers: Record<string, string>;
  try {
    await lp.write(encode({ method: req.method, path: req.path, headers: stringRecord(req.headers, REQUEST_HEADERS) }), { signal: head });
    // Half-close: the request is complete (the response still flows back).
    void stream.closeWrite().catch(() => {});
    const frame = await lp.read({ signal: head });
    const v = JSON.parse(Buffer.from(frame.subarray()).toString('utf8')) as { status?: unknown; headers?: unknown };
    if (typeof v.status !== 'number') throw new Error('peer sent a response head without a status');
    status = v.status;
    headers = stringRecord(v.headers, null);
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
  const body = bodyOf(lp.unwrap(), timeoutMs);
  const onAbort = (): void => {
    body.destroy(new Error('request aborted'));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  body.once('close', () => signal.removeEventListener('abort', onAbort));
  return { status, headers, body };
}

/**
 * Answers one request stream with `answer` (the agent's own registry, local content only). A request that is
 * not a pull is answered 400 with no body; a request head must arrive within `timeoutMs`.
 */
export async function serveOverStream(
  stream: Stream,
  answer: (req: PeerRequest, signal: AbortSignal) => Promise<PeerResponse>,
  timeoutMs: number,
): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_HEAD_BYTES });
  const ac = new AbortController();
  try {
    const frame = await lp.read({ signal: AbortSignal.timeout(timeoutMs) });
    const req = parsePeerRequest(frame.subarray());
    if (!req) {
      await lp.write(encode({ status: 400, headers: {} }));
      await stream.close();
      return;
    }
    const res = await answer(req, ac.signal);
    await lp.write(encode({ status: res.status, headers: res.headers }));
    const raw = lp.unwrap();
    // The sink pulls chunk by chunk: the local read advances only as fast as the peer takes the bytes.
    await raw.sink(
      (async function* () {
        for await (const chunk of res.body as AsyncIterable<Buffer>) yield chunk;
      })(),
    );
    await stream.close();
  } catch (err) {
    ac.abort();
    stream.abort(err as Error);
  }
}
