/**
 * Opens the Redis connection both processes use: one node by URL, or a Redis Cluster when
 * seed nodes are given. Commands fail fast while disconnected instead of queueing, so callers
 * see an error within their deadline and fail closed.
 */
import { createClient, createCluster } from "redis";

export interface RedisTarget {
  url: string;
  /** Comma-separated host:port seed nodes; when set, Redis Cluster is used. */
  clusterNodes?: string;
}

export type SingleRedis = ReturnType<typeof createClient>;
export type ClusterRedis = ReturnType<typeof createCluster>;
export type AnyRedis = SingleRedis | ClusterRedis;

export function isCluster(redis: AnyRedis): redis is ClusterRedis {
  return "slots" in redis || "masters" in redis;
}

/**
 * Whether commands can reach Redis now. A single node's client knows (it is not ready while it
 * reconnects); a cluster client only says whether it is open.
 */
export function redisReachable(redis: AnyRedis): boolean {
  return isCluster(redis) ? redis.isOpen : redis.isReady;
}

export async function connectRedis(target: RedisTarget): Promise<AnyRedis> {
  const socket = {
    connectTimeout: 2000,
    reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
  };
  const redis: AnyRedis = target.clusterNodes
    ? createCluster({
        rootNodes: target.clusterNodes
          .split(",")
          .map((node) => ({ url: `redis://${node.trim()}` })),
        defaults: { socket, disableOfflineQueue: true },
      })
    : createClient({ url: target.url, socket, disableOfflineQueue: true });
  // node-redis emits errors on reconnect attempts; without a listener they crash the process.
  redis.on("error", () => {});
  await redis.connect();
  return redis;
}
