import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { EndpointProbePlan } from '../plan/endpointProbes.js';

/** At most this long per endpoint (DNS, connect, TLS and the answer together); all endpoints run in parallel. */
export const ENDPOINT_PROBE_TIMEOUT_MS = 3000;

/** What one endpoint said: an HTTP status (with its challenge), a socket or TLS error, or why it was not asked. */
export type EndpointAnswer =
  | { kind: 'http'; status: number; challenge: string | null; ms: number }
  | {
      kind: 'error';
      code: string;
      message: string;
      ms: number;
      /** The TLS handshake had completed on the client's side when the error came (the server hung up after it). */
      afterTls?: boolean;
    }
  | { kind: 'not-sent'; missingEnv: string[]; unreadable: Array<{ file: string; code: string }> };

/**
 * `GET probeUrl` as containerd would send it: with the endpoint's CA (or the system CAs), its client
 * certificate, skip_verify, and the header values read from `env`. One request, no redirect followed, no
 * agent, bounded by `timeoutMs`. Header values go on the wire only; nothing returned holds them.
 */
export async function probeEndpoint(
  p: EndpointProbePlan,
  env: NodeJS.ProcessEnv,
  timeoutMs = ENDPOINT_PROBE_TIMEOUT_MS,
): Promise<EndpointAnswer> {
  const missingEnv = p.headers.filter((h) => !env[h.env]).map((h) => h.env);
  const unreadable: Array<{ file: string; code: string }> = [];
  const read = async (file: string | null | undefined): Promise<Buffer | undefined> => {
    if (!file) return undefined;
    return readFile(file).catch((err: NodeJS.ErrnoException) => {
      unreadable.push({ file, code: err.code ?? 'error' });
      return undefined;
    });
  };
  const [ca, cert, key] = await Promise.all([read(p.caFile), read(p.client?.certFile), read(p.client?.keyFile)]);
  if (missingEnv.length > 0 || unreadable.length > 0) return { kind: 'not-sent', missingEnv, unreadable };
  const url = new URL(p.probeUrl);
  const headers = Object.fromEntries(p.headers.map((h) => [h.name, env[h.env]!]));
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: EndpointAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const tls =
      url.protocol === 'https:' ? { rejectUnauthorized: !p.skipVerify, ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) } : {};
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers, agent: false, ...tls }, (res) => {
      res.resume();
      const challenge = res.headers['www-authenticate'];
      done({
        kind: 'http',
        status: res.statusCode ?? 0,
        challenge: (Array.isArray(challenge) ? challenge[0] : challenge) ?? null,
        ms: Date.now() - started,
      });
      req.destroy();
    });
    const timer = setTimeout(() => {
      done({ kind: 'error', code: 'ETIMEDOUT', message: `no answer within ${timeoutMs} ms`, ms: Date.now() - started });
      req.destroy();
    }, timeoutMs);
    // TLS 1.3: the client finishes its handshake before the server has checked the client certificate; a
    // server that then refuses it without an alert (Node's) just hangs up.
    let afterTls = false;
    req.on('socket', (sock) => sock.once('secureConnect', () => (afterTls = true)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({
        kind: 'error',
        code: err.code ?? 'error',
        message: tlsReason(err.message.split('\n')[0]!),
        ms: Date.now() - started,
        ...(afterTls ? { afterTls } : {}),
      }),
    );
    req.end();
  });
}

/**
 * OpenSSL's `803C…:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:…:SSL alert number 42`
 * as `TLS alert: sslv3 alert bad certificate (42)`; other messages as they are.
 */
function tlsReason(message: string): string {
  const m = /SSL routines:[^:]*:([^:]+):/.exec(message);
  if (!m) return message;
  const alert = /SSL alert number (\d+)/.exec(message)?.[1];
  return `TLS: ${m[1]}${alert ? ` (alert ${alert})` : ''}`;
}

/** Node's certificate verification failures meaning "no CA we were given signs this certificate". */
const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
/**
 * TLS alerts a server sends about the client's certificate: certificate_required (TLS 1.3), or, from Go's
 * crypto/tls (registry:2 with http.tls.clientcas) and TLS 1.2 servers, bad_certificate / handshake_failure
 * for a missing one as well as for one it refuses. Which of the two it is follows from whether we sent one.
 */
const CLIENT_CERT_ALERTS = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
]);
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE']);

/** Why a probe failed, as the `problem` of doctor's JSON (stable strings). */
export type EndpointProblem =
  | 'unknown-ca'
  | 'certificate-name'
  | 'certificate-expired'
  | 'client-certificate-required'
  | 'client-certificate-refused'
  | 'not-tls'
  | 'closed'
  | 'unreachable'
  | 'timeout'
  | 'auth-required'
  | 'auth-refused'
  | 'not-a-registry'
  | 'http-status'
  | 'not-sent'
  | 'error';

export interface EndpointVerdict {
  status: 'ok' | 'warn' | 'fail';
  problem?: EndpointProblem;
  detail: string;
  fix?: string;
}

/** `Bearer realm="https://auth/token",service="x"` -> `Bearer realm="https://auth/token"` (no scopes, no other params). */
function challengeShown(c: string | null): string {
  if (!c) return 'no WWW-Authenticate';
  const scheme = c.split(/\s+/)[0] ?? c;
  const realm = /realm="([^"]*)"/i.exec(c)?.[1];
  return realm ? `${scheme} realm="${realm}"` : scheme;
}

/** Pure: what an endpoint's answer means for pulls through it, and the fix. Never holds a header value. */
export function judgeEndpoint(p: EndpointProbePlan, a: EndpointAnswer): EndpointVerdict {
  const at = `spec.registries.hosts["${p.registry}"].endpoints[${p.position - 1}]`;
  const auth = p.headers.find((h) => h.name.toLowerCase() === 'authorization');
  if (a.kind === 'not-sent') {
    const why = [
      ...(a.missingEnv.length ? [`${a.missingEnv.map((v) => `$${v}`).join(' and ')} not set (header value)`] : []),
      ...a.unreadable.map((u) => `${u.file} cannot be read (${u.code})`),
    ].join('; ');
    return {
      status: 'fail',
      problem: 'not-sent',
      detail: `${p.probeUrl} not asked: ${why}`,
      fix: a.missingEnv.length
        ? `export ${a.missingEnv.map((v) => `${v}=...`).join(' ')} ("Basic <base64 of user:password>" or "Bearer <token>"), as \`lo provision\` needs too`
        : `check the tls files of ${at} (relative paths are read from the spec file's directory)`,
    };
  }
  if (a.kind === 'http') {
    const answered = `${p.probeUrl} answered ${a.status} in ${a.ms} ms`;
    if (a.status === 200) return { status: 'ok', detail: `${answered}${auth ? ` with the ${auth.name} header from $${auth.env}` : ''}` };
    if (a.status === 401 && !auth)
      return {
        status: 'warn',
        problem: 'auth-required',
        detail: `${answered} (${challengeShown(a.challenge)}): anonymous pulls are refused`,
        fix: `give ${at} headers: { Authorization: { env: MY_AUTH } } with "Basic <base64 of user:password>" or "Bearer <token>" in $MY_AUTH (containerd has no credential field in hosts.toml)`,
      };
    if (a.status === 401 && /^basic\b/i.test(a.challenge ?? ''))
      return {
        status: 'fail',
        problem: 'auth-refused',
        detail: `${answered} (${challengeShown(a.challenge)}): the ${auth!.name} header from $${auth!.env} was refused`,
        fix: `check $${auth!.env}: it must hold "Basic <base64 of user:password>" for a user of ${new URL(p.url).host}`,
      };
    if (a.status === 401)
      // A token-service registry challenges /v2/ itself; the static header is sent with every pull, which is
      // where it counts (a token scoped to repositories may not open /v2/).
      return {
        status: 'ok',
        detail: `${answered} (${challengeShown(a.challenge)}): a token-service registry; the ${auth!.name} header from $${auth!.env} goes with every pull`,
      };
    if (a.status === 404 && p.overridePath)
      // registry:2 and others route only /v2/ and /v2/<repository>/…: a prefix root is 404 on a working
      // endpoint. What this proves is the route and TLS (CA, client certificate); the path is the pull's.
      return {
        status: 'ok',
        detail: `${answered}: reachable with verified TLS; the path prefix has no API root of its own (normal for registry:2), containerd requests ${p.url}/<repository>/manifests/<tag> under it`,
      };
    if (a.status === 404)
      return {
        status: 'fail',
        problem: 'not-a-registry',
        detail: `${answered}: not a registry API (no /v2/)`,
        fix: `check ${at}.url; a repository prefix goes after /v2 (https://host/v2/<prefix>, override_path)`,
      };
    return {
      status: 'fail',
      problem: 'http-status',
      detail: answered,
      fix: a.status === 403 ? `the endpoint forbids this client: check ${at}.headers and its access rules` : `see the endpoint's logs`,
    };
  }
  const failed = `${p.probeUrl}: ${a.message} (${a.code})`;
  if (UNKNOWN_CA.has(a.code))
    return {
      status: 'fail',
      problem: 'unknown-ca',
      detail: `${failed}: its certificate is signed by a CA ${p.caFile ? `other than ${p.caFile}` : 'the system does not trust'}`,
      fix: `give the endpoint's CA (the PEM that signed its certificate) as ${at}.tls.caFile`,
    };
  if (a.code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return {
      status: 'fail',
      problem: 'certificate-name',
      detail: `${failed}: the certificate is not for ${new URL(p.url).hostname}`,
      fix: `use the name the endpoint's certificate is issued for in ${at}.url, or have the certificate re-issued`,
    };
  if (a.code === 'CERT_HAS_EXPIRED' || a.code === 'CERT_NOT_YET_VALID')
    return {
      status: 'fail',
      problem: 'certificate-expired',
      detail: failed,
      fix: "renew the endpoint's certificate (or check this machine's clock)",
    };
  const hungUpAfterTls = a.afterTls === true && (a.code === 'ECONNRESET' || a.code === 'EPIPE');
  if (CLIENT_CERT_ALERTS.has(a.code) && !p.client)
    return {
      status: 'fail',
      problem: 'client-certificate-required',
      detail: `${failed}: the endpoint requires a client certificate`,
      fix: `give ${at}.tls.certFile and keyFile (a certificate the endpoint's client CA signed)`,
    };
  if (p.client && (CLIENT_CERT_ALERTS.has(a.code) || hungUpAfterTls))
    return {
      status: 'fail',
      problem: 'client-certificate-refused',
      detail: `${failed}: the endpoint refused the client certificate ${p.client.certFile}`,
      fix: `give ${at}.tls.certFile / keyFile a certificate signed by a CA the endpoint accepts for clients`,
    };
  if (a.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || a.code === 'EPROTO')
    return {
      status: 'fail',
      problem: 'not-tls',
      detail: `${failed}: the endpoint does not speak TLS there`,
      fix: `check the scheme and port of ${at}.url (http:// for a plain-HTTP registry)`,
    };
  if (hungUpAfterTls)
    return {
      status: 'fail',
      problem: 'closed',
      detail: `${failed}: the endpoint closed the connection right after the TLS handshake`,
      fix: `check the endpoint's logs; if it wants a client certificate, give ${at}.tls.certFile and keyFile`,
    };
  if (UNREACHABLE.has(a.code))
    return {
      status: 'fail',
      problem: a.code === 'ETIMEDOUT' ? 'timeout' : 'unreachable',
      detail: `${failed}: unreachable from this machine`,
      fix: `check that ${new URL(p.url).host} resolves and answers from here (VPN, proxy, firewall): kind nodes reach it through this machine's network too`,
    };
  return { status: 'fail', problem: 'error', detail: failed, fix: `check ${at}` };
}
