/**
 * Seeds the benchmark database with set-based SQL: `INSERT … SELECT generate_series` for the
 * million listing rows (PostgreSQL builds them itself, no row crosses the wire one at a time)
 * and `INSERT … SELECT unnest($arrays)` batches for the devices that must verify for real.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import type { Client } from "pg";
import { hashToken, newToken } from "../../src/auth/tokens";
import { SESSION_TOKEN_PREFIX } from "../../src/auth/session.service";
import type { Keyring } from "../../worker/seal/keyring";
import { base32Decode } from "../../worker/totp/base32";
import { provisionSeed } from "../../worker/provision";

export function newAccountId(): string {
  return String(randomInt(100_000, 999_999)) + String(randomInt(100_000, 999_999));
}

export async function createAccount(pg: Client, label: string): Promise<string> {
  const id = newAccountId();
  await pg.query(`INSERT INTO "Account"(id, email, phone) VALUES ($1, $2, '+14155550100')`, [
    id,
    `bench-${label}-${id}@example.com`,
  ]);
  await pg.query(
    `INSERT INTO "User"(id, "accountId", "userName", "userNameKey", arn, "isRoot")
     VALUES ($1::text, $1::text, 'root', 'root', 'arn:aws:iam::' || $1::text || ':root', true)`,
    [id],
  );
  return id;
}

/** A bearer session for a user, inserted directly; returns the token. */
export async function createSession(pg: Client, accountId: string, userId: string) {
  const token = newToken(SESSION_TOKEN_PREFIX);
  await pg.query(
    `INSERT INTO "Session"(id, "tokenHash", "accountId", "userId", kind, "expiresAt")
     VALUES (gen_random_uuid(), $1, $2, $3, 'password', now() + interval '1 day')`,
    [hashToken(token), accountId, userId],
  );
  return token;
}

/** Unassigned devices for the listing benchmark, in chunks so progress shows. */
export async function seedListingDevices(
  pg: Client,
  accountId: string,
  count: number,
  onProgress?: (done: number) => void,
) {
  const chunk = 100_000;
  for (let from = 1; from <= count; from += chunk) {
    const to = Math.min(count, from + chunk - 1);
    await pg.query(
      `INSERT INTO "VirtualMfaDevice"(id, "accountId", name, path, "serialNumber", "sealedSeed", "keyId")
       SELECT gen_random_uuid(), $1::text, 'bench-' || lpad(g::text, 7, '0'), '/',
              'arn:aws:iam::' || $1::text || ':mfa/bench-' || lpad(g::text, 7, '0'),
              md5(g::text) || md5((g + 7)::text), 'bench'
       FROM generate_series($2::int, $3::int) AS g`,
      [accountId, from, to],
    );
    onProgress?.(to);
  }
}

export interface VerifyingDevice {
  userId: string;
  serialNumber: string;
  /** The decoded seed, kept only in the benchmark's memory to compute codes. */
  key: Buffer;
  token: string;
  /** The last step this device was used at, so no code is sent twice. */
  lastStep: number;
}

/**
 * Users, each with a session and an enabled device whose seed is sealed under the workers'
 * keyring, so getSessionToken verifies for real. Enabling is done in SQL: the benchmark
 * measures sign-in, not enrolment.
 */
export async function seedVerifyingDevices(
  pg: Client,
  keyring: Keyring,
  accountId: string,
  count: number,
): Promise<VerifyingDevice[]> {
  const devices: VerifyingDevice[] = [];
  const batch = 5000;
  for (let from = 0; from < count; from += batch) {
    const rows = { userIds: [] as string[], names: [] as string[], tokens: [] as string[] };
    const dev = {
      ids: [] as string[],
      serials: [] as string[],
      sealed: [] as string[],
      keyIds: [] as string[],
    };
    for (let i = from; i < Math.min(count, from + batch); i++) {
      const userId = `AIDA${randomBytes(9).toString("hex").toUpperCase().slice(0, 17)}`;
      const name = `bench-user-${i}`;
      const deviceId = randomUUID();
      const serialNumber = `arn:aws:iam::${accountId}:mfa/bench-device-${i}`;
      const provisioned = provisionSeed(keyring, { accountId, deviceId });
      const token = newToken(SESSION_TOKEN_PREFIX);
      rows.userIds.push(userId);
      rows.names.push(name);
      rows.tokens.push(hashToken(token));
      dev.ids.push(deviceId);
      dev.serials.push(serialNumber);
      dev.sealed.push(provisioned.sealedSeed);
      dev.keyIds.push(provisioned.keyId);
      devices.push({
        userId,
        serialNumber,
        key: base32Decode(provisioned.base32Seed),
        token,
        lastStep: -1,
      });
    }
    await pg.query(
      `INSERT INTO "User"(id, "accountId", "userName", "userNameKey", arn)
       SELECT u, $1::text, n, n, 'arn:aws:iam::' || $1::text || ':user/' || n FROM unnest($2::text[], $3::text[]) AS t(u, n)`,
      [accountId, rows.userIds, rows.names],
    );
    await pg.query(
      `INSERT INTO "Session"(id, "tokenHash", "accountId", "userId", kind, "expiresAt")
       SELECT gen_random_uuid(), h, $1, u, 'password', now() + interval '1 day'
       FROM unnest($2::text[], $3::text[]) AS t(h, u)`,
      [accountId, rows.tokens, rows.userIds],
    );
    await pg.query(
      `INSERT INTO "VirtualMfaDevice"(id, "accountId", name, path, "serialNumber", "sealedSeed", "keyId", "userId", "enableDate")
       SELECT d::uuid, $1, substring(s from ':mfa/(.*)$'), '/', s, sealed, k, u, now()
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(d, s, sealed, k, u)`,
      [accountId, dev.ids, dev.serials, dev.sealed, dev.keyIds, rows.userIds],
    );
  }
  return devices;
}
