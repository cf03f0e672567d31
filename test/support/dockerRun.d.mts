// Types for dockerRun.mjs (plain JS so the benchmarks use it without a build).
import type Docker from 'dockerode';
export declare const RUN_LABEL: 'dev.lok8s.lo.test-run';
/** Removes the containers, volumes, networks and images of one run (by its run label and `<runId>/…` tags). */
export declare function removeRunObjects(docker: Docker, runId: string): Promise<void>;
/** Polls until the URL answers (any HTTP status), bounded. */
export declare function waitHttp(url: string, timeoutMs?: number): Promise<void>;
/** Starts a plain-HTTP registry:2 on `network` at `ip` (port 5000), labelled with the run; waits until it answers. */
export declare function startRegistry(
  docker: Docker,
  o: { runId: string; name: string; network: string; ip: string },
): Promise<{ name: string; url: string; ip: string }>;
