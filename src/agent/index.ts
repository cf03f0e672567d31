export { startAgent, type AgentOptions, type RunningAgent } from './agent.js';
export { deployP2P, removeP2P, agentArgs, createP2PHook, type DeployP2PDeps, type P2PHookOptions } from '../apply/deployP2P.js';
export { ensureAgentImage, DEFAULT_AGENT_BASE } from '../apply/agentImage.js';
export { ensureSwarmKey, generateSwarmKey, parseSwarmKey, readSwarmKey } from './swarmKey.js';
export { digestKey, tagKey } from './keys.js';
export { createRegistryHandler, startRegistryServer, HOP_HEADER } from './registry.js';
export type { ContentSource } from './contentSource.js';
