/** The registry commands, one module each; this index keeps the older import path working. */
export { observeSharedOrNothing, setup, type RegistryDeps } from './registrySetup.js';
export { registryUp, type UpResult } from './registryUp.js';
export { registryStatus, type RegistryHealth, type RegistryStatus, type StatusResult } from './registryStatus.js';
export { registryDown, registryDownPlanned, diffDown, type RemoveResult, type RemoveOptions } from './registryDown.js';
export { registryClean, registryCleanPlanned, diffClean, observeClean, type CleanObserved } from './registryClean.js';
export { registryGc, type GcRunResult } from './registryGc.js';
