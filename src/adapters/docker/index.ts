import { silentLog, type Log } from '../../runtime/log.js';
import { connectDocker, DockerCalls, type ConnectOptions, type DockerConnection } from './client.js';
import { Containers } from './containers.js';
import { Engine } from './engine.js';
import { Exec } from './exec.js';
import { Images } from './images.js';
import { Networks } from './networks.js';
import type { DockerClients } from './types.js';
import { Volumes } from './volumes.js';

export { connectDocker, dockerTarget, DockerUnreachableError, type ConnectOptions, type DockerConnection } from './client.js';
export type * from './types.js';

/** The narrow clients over one connection; every call they make goes through `log`. */
export function clientsFor(conn: DockerConnection, log: Log = silentLog): DockerClients {
  const calls = new DockerCalls(conn, log);
  return {
    target: conn.target,
    networks: new Networks(calls),
    volumes: new Volumes(calls),
    containers: new Containers(calls),
    images: new Images(calls),
    engine: new Engine(calls),
    exec: new Exec(calls),
  };
}

/** Connects (one ping, through the log too) and hands out the narrow clients. */
export async function connectClients(opts: ConnectOptions): Promise<DockerClients> {
  return clientsFor(await connectDocker(opts), opts.log ?? silentLog);
}
