import { connectDocker, type ConnectOptions, type DockerConnection } from './client.js';
import { Containers } from './containers.js';
import { Images } from './images.js';
import { Networks } from './networks.js';
import { Volumes } from './volumes.js';

export * from './client.js';
export type { ContainerSpec, ContainerState } from './containers.js';
export type { NetworkState } from './networks.js';
export type { VolumeState } from './volumes.js';

/** The four narrow clients over one connection. */
export interface DockerClients {
  conn: DockerConnection;
  networks: Networks;
  volumes: Volumes;
  containers: Containers;
  images: Images;
}

export function clientsFor(conn: DockerConnection): DockerClients {
  return { conn, networks: new Networks(conn), volumes: new Volumes(conn), containers: new Containers(conn), images: new Images(conn) };
}

export async function connectClients(opts: ConnectOptions = {}): Promise<DockerClients> {
  return clientsFor(await connectDocker(opts));
}
