/**
 * libp2p 2.x's dependencies (mortice -> it-queue, abort-error, peer-store) call Promise.withResolvers, which
 * Node only has from 22; lo supports Node 20. This is the spec'd behaviour (TC39 proposal, ES2024).
 */
const P = Promise as unknown as { withResolvers?: unknown };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (v: T | PromiseLike<T>) => void;
    let reject!: (e?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
export {};
