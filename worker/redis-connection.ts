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

const SOCKET = {
  connectTimeout: 2000,
  reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
};

/**
 * Cluster options: every node, the seeds and those discovered, is reached with REDIS_URL's
 * scheme (rediss: for TLS), user and password. Seeds used to be plain redis://host:port, so a
 * cluster behind a password or TLS could not be used at all.
 */
export function clusterOptions(url: string, clusterNodes: string) {
  const base = new URL(url);
  const credentials = {
    ...(base.username ? { username: decodeURIComponent(base.username) } : {}),
    ...(base.password ? { password: decodeURIComponent(base.password) } : {}),
  };
  const socket = base.protocol === "rediss:" ? { ...SOCKET, tls: true as const } : SOCKET;
  return {
    rootNodes: clusterNodes.split(",").map((node) => ({ url: `${base.protocol}//${node.trim()}` })),
    defaults: { ...credentials, socket, disableOfflineQueue: true },
  };
}

/**
 * Connects, retrying until Redis answers. `logger` hears of connection errors, at most one every
 * 5 s: a reconnect loop raises one per attempt, and a process that waits for an unreachable
 * Redis at startup used to say nothing at all.
 */
export async function connectRedis(
  target: RedisTarget,
  logger?: { warn(details: object, message: string): void },
): Promise<AnyRedis> {
  const redis: AnyRedis = target.clusterNodes
    ? createCluster(clusterOptions(target.url, target.clusterNodes))
    : createClient({ url: target.url, socket: SOCKET, disableOfflineQueue: true });
  let lastReported = 0;
  // Without a listener node-redis's errors would crash the process.
  redis.on("error", (error: Error) => {
    if (Date.now() - lastReported < 5000) return;
    lastReported = Date.now();
    logger?.warn({ err: error }, "Redis connection error; commands fail until it reconnects");
  });
  await redis.connect();
  return redis;
}
