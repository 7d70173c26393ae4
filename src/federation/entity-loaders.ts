/**
 * Per-request DataLoaders for entity references. A router resolves a list of orders' owners
 * with one `_entities` call holding many representations; each loader turns those into one
 * query. Loaders are keyed by account, so a cached row of one account can never answer a
 * reference made under another.
 */
import DataLoader from "dataloader";
import type { DeviceRow } from "../mfa-devices/mfa-device.type";
import type { UserRow } from "../users/user.type";
import type { EntityReferenceService } from "./entity-reference.service";

export interface EntityLoaders {
  users(accountId: string): DataLoader<string, UserRow | null>;
  devices(accountId: string): DataLoader<string, DeviceRow | null>;
}

export function createEntityLoaders(references: EntityReferenceService): EntityLoaders {
  const users = new Map<string, DataLoader<string, UserRow | null>>();
  const devices = new Map<string, DataLoader<string, DeviceRow | null>>();
  return {
    users: (accountId) =>
      memo(users, accountId, () =>
        loaderBy(
          (ids) => references.usersById(accountId, ids),
          (row) => row.id,
        ),
      ),
    devices: (accountId) =>
      memo(devices, accountId, () =>
        loaderBy(
          (serials) => references.devicesBySerialNumber(accountId, serials),
          (row) => row.serialNumber,
        ),
      ),
  };
}

function memo<V>(cache: Map<string, V>, key: string, create: () => V): V {
  let value = cache.get(key);
  if (!value) cache.set(key, (value = create()));
  return value;
}

/** A loader that answers each key with its row, or null when no row has that key. */
function loaderBy<T>(
  fetch: (keys: readonly string[]) => Promise<T[]>,
  keyOf: (row: T) => string,
): DataLoader<string, T | null> {
  return new DataLoader<string, T | null>(async (keys) => {
    const rows = new Map((await fetch(keys)).map((row) => [keyOf(row), row]));
    return keys.map((key) => rows.get(key) ?? null);
  });
}
