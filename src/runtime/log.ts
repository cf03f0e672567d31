/**
 * The debug log: one line per Docker and external-tool call ("creating container x…", "created container x
 * (12 ms)", "failed to create container x: why"), written to stderr with `lo --verbose` or `LO_DEBUG=1`.
 * Created once at the top (src/cli/main.ts) and passed down; modules never read the environment for it.
 */
export interface Log {
  readonly enabled: boolean;
  debug(message: string): void;
  /** Runs one external call, logging its start, its end with the time it took, or its failure. */
  call<T>(verb: string, object: string, fn: () => Promise<T>): Promise<T>;
}

const FORMS: Record<string, [string, string]> = {
  create: ['creating', 'created'],
  remove: ['removing', 'removed'],
  start: ['starting', 'started'],
  stop: ['stopping', 'stopped'],
  connect: ['connecting', 'connected'],
  disconnect: ['disconnecting', 'disconnected'],
  inspect: ['inspecting', 'inspected'],
  list: ['listing', 'listed'],
  build: ['building', 'built'],
  run: ['running', 'ran'],
  write: ['writing', 'wrote'],
  apply: ['applying', 'applied'],
  delete: ['deleting', 'deleted'],
  get: ['getting', 'got'],
  pull: ['pulling', 'pulled'],
  ping: ['pinging', 'pinged'],
  exec: ['executing', 'executed'],
  probe: ['probing', 'probed'],
};

export function verbForms(verb: string): [ing: string, ed: string] {
  return FORMS[verb] ?? [`${verb.replace(/e$/, '')}ing`, `${verb.replace(/e$/, '')}ed`];
}

/** A log that drops everything (the default for library callers and tests). */
export const silentLog: Log = {
  enabled: false,
  debug: () => {},
  call: (_verb, _object, fn) => fn(),
};

export interface LogOptions {
  /** Where lines go (stderr in the CLI). */
  write: (line: string) => void;
  /** Clock for durations (tests pass a fixed one). */
  now?: () => number;
}

export function createLog(opts: LogOptions): Log {
  const now = opts.now ?? (() => performance.now());
  const line = (s: string): void => opts.write(`[lo] ${s}\n`);
  return {
    enabled: true,
    debug: line,
    async call(verb, object, fn) {
      const [ing, ed] = verbForms(verb);
      const t0 = now();
      line(`${ing} ${object}…`);
      try {
        const result = await fn();
        line(`${ed} ${object} (${Math.round(now() - t0)} ms)`);
        return result;
      } catch (err) {
        line(`failed to ${verb} ${object}: ${(err as Error)?.message ?? String(err)}`);
        throw err;
      }
    },
  };
}

/** `--verbose` or LO_DEBUG (any value but "", "0", "false") turns the debug log on. */
export function debugEnabled(env: NodeJS.ProcessEnv, verbose: boolean | undefined): boolean {
  if (verbose) return true;
  const v = env.LO_DEBUG;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}
