import type { DockerCalls } from './client.js';
import type { EngineClient } from './types.js';

/** The engine itself: its version, for `lo doctor`. */
export class Engine implements EngineClient {
  constructor(private readonly calls: DockerCalls) {}

  async version(): Promise<{ version: string; apiVersion: string }> {
    const v = await this.calls.run('get', `version of the Docker engine ${this.calls.target}`, (docker) => docker.version());
    return { version: v.Version, apiVersion: v.ApiVersion };
  }
}
