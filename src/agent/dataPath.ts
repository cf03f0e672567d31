import { hkdfSync } from 'node:crypto';
import { once } from 'node:events';
import { Agent as TlsAgent, createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { peerRequestOf } from './ociStream.js';
import { fetchOverHttp } from './registry/fetchOverHttp.js';
import { HOP_HEADER } from './registry/request.js';
import type { PeerRequest, PeerResponse } from './router.js';

/**
 * The agents' bulk data path: HTTP/1.1 keep-alive over TLS 1.3 with an external pre-shared key derived from
 * the swarm key, so OpenSSL (Node's native crypto) encrypts each byte once, instead of pnet's XSalsa20
 * (WebAssembly) plus noise's ChaCha20-Poly1305 on the libp2p stream. Only holders of the swarm key complete the
 * handshake: the server knows no other key, checks the client's PSK binder in its first message, and the client
 * checks nothing else (the PSK authenticates both sides; there is no certificate). OpenSSL negotiates the
 * psk_dhe_ke mode (an ECDHE share with the PSK), so there is forward secrecy. Node 20's `pskCallback` serves
 * TLS 1.3 as well as 1.2; 1.3 only, with its two SHA-256 suites (what an external PSK from that callback needs).
 */
export const DATA_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';
const DATA_IDENTITY = 'lo-p2p-data/1';
const TLS_VERSIONS = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

/** HKDF-SHA256 of the swarm key with a label: the data path's key is never the libp2p one. */
export function dataKeyOf(swarmKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', swarmKey, 'lo-p2p', 'lo p2p data path tls-psk v1', 32));
}

interface DataServerOptions {
  host: string;
  port: number;
  key: Buffer;
  /** The agent's own registry handler (registry.ts); it gets the admitted request with the hop header. */
  registry: (req: IncomingMessage, res: ServerResponse) => void;
}

/** Serves other agents' pulls (GET/HEAD of a manifest or a blob) on the data port; anything else gets 400. */
export async function startDataServer(opts: DataServerOptions): Promise<Server> {
  const server = createServer(
    {
      ...TLS_VERSIONS,
      ciphers: DATA_CIPHERS,
      pskCallback: (_socket: TLSSocket, identity: string) => (identity === DATA_IDENTITY ? opts.key : null),
    },
    (req, res) => handle(req, res, opts.registry),
  );
  // Idle data connections stay open 5 min; each agent touches its peers' every minute (Libp2pRouter.keepWarm).
  server.keepAliveTimeout = 300_000;
  server.headersTimeout = 10_000;
  server.on('tlsClientError', () => {}); // a wrong key: the handshake fails, nothing is served
  server.listen(opts.port, opts.host);
  await once(server, 'listening');
  return server;
}

/**
 * Admits a pull and hands it to the registry in this process (no second HTTP hop): only its clean path, its
 * `accept` and `range` headers and the hop header reach the registry, which then answers from this node's own
 * store (a peer never relays onward). Anything else is answered 400 here.
 */
function handle(req: IncomingMessage, res: ServerResponse, registry: DataServerOptions['registry']): void {
  const pull = peerRequestOf(req.method, req.url, req.headers);
  if (!pull) {
    res.writeHead(400, { 'content-length': 0 });
    res.end();
    return;
  }
  req.url = pull.path;
  req.headers = { ...pull.headers, [HOP_HEADER]: '1' };
  registry(req, res);
}

/** The client side: one keep-alive TLS-PSK agent, so connections to peers stay warm between requests. */
export function createDataClient(key: Buffer): {
  fetch(base: string, req: PeerRequest, timeoutMs: number, signal: AbortSignal): Promise<PeerResponse>;
  close(): void;
} {
  const agent = new TlsAgent({
    ...TLS_VERSIONS,
    keepAlive: true,
    keepAliveMsecs: 10_000,
    maxSockets: 32,
    maxFreeSockets: 4,
    ciphers: DATA_CIPHERS,
    pskCallback: () => ({ identity: DATA_IDENTITY, psk: key }),
    // No certificate: the pre-shared key authenticates the server (a server without it cannot finish).
    checkServerIdentity: () => undefined,
  });
  return {
    fetch: (base, req, timeoutMs, signal) => fetchOverHttp(base, req, timeoutMs, signal, {}, agent),
    close: () => agent.destroy(),
  };
}
