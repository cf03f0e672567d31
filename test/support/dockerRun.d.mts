// Types for dockerRun.mjs (plain JS so the benchmarks use it without a build).
import type Docker from 'dockerode';
export declare const RUN_LABEL: 'dev.lok8s.lo.test-run';
/** Removes the containers, volumes, networks and images of one run (by its run label and `<runId>/…` tags). */
export declare function removeRunObjects(docker: Docker, runId: string): Promise<void>;
