/**
 * What an interrupted app-store run may leave on the Docker Engine, removed by the test apps' own
 * names and labels only (never anything else on the Engine).
 */
import Docker from 'dockerode';

export const DOCKER_SOCKET = process.env.OUTPOST_DOCKER_SOCKET ?? '/var/run/docker.sock';
export const docker = new Docker({ socketPath: DOCKER_SOCKET });

/** Whether an inspect finds its object (404: no). */
export async function found(inspect: Promise<unknown>): Promise<boolean> {
  try {
    await inspect;
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}
export const containerExists = (name: string) => found(docker.getContainer(name).inspect());
export const volumeExists = (name: string) => found(docker.getVolume(name).inspect());
export async function networkExists(name: string): Promise<boolean> {
  return (await docker.listNetworks({ filters: { name: [name] } })).some((n) => n.Name === name);
}

/** Removes the containers, networks and volumes of these catalog apps, and the named extra containers. */
export async function removeAppLeftovers(apps: string[], containers: string[] = []): Promise<void> {
  for (const c of await docker.listContainers({ all: true, filters: { label: ['io.outpost.managed=true'] } })) {
    if (apps.some((a) => c.Labels['io.outpost.app'] === a)) await docker.getContainer(c.Id).remove({ force: true });
  }
  for (const name of containers) if (await containerExists(name)) await docker.getContainer(name).remove({ force: true });
  for (const app of apps) {
    if (await networkExists(`websoft9-${app}`)) await docker.getNetwork(`websoft9-${app}`).remove();
    for (const v of (await docker.listVolumes({ filters: { label: [`io.outpost.app=${app}`] } })).Volumes ?? []) await docker.getVolume(v.Name).remove();
  }
}
