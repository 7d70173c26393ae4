/**
 * The two listing accounts of workload (b). The million-row account is kept between runs
 * (found by its fixed email), because seeding it takes the better part of a minute.
 */
import type { Client } from "pg";
import { createSession, seedListingDevices, newAccountId } from "./seed";

export async function findOrSeedListingAccount(
  pg: Client,
  devices: number,
  log: (message: string) => void,
): Promise<{ accountId: string; token: string }> {
  const email = `bench-listing-${devices}@example.com`;
  const found = await pg.query<{ id: string }>(`SELECT id FROM "Account" WHERE email = $1`, [
    email,
  ]);
  let accountId: string | undefined = found.rows[0]?.id;
  if (accountId) {
    const { rows } = await pg.query<{ n: string }>(
      `SELECT count(*) AS n FROM "VirtualMfaDevice" WHERE "accountId" = $1`,
      [accountId],
    );
    if (Number(rows[0]!.n) !== devices) {
      await pg.query(`DELETE FROM "Account" WHERE id = $1`, [accountId]);
      accountId = undefined;
    }
  }
  if (!accountId) {
    accountId = newAccountId();
    await pg.query(`INSERT INTO "Account"(id, email, phone) VALUES ($1, $2, '+14155550100')`, [
      accountId,
      email,
    ]);
    await pg.query(
      `INSERT INTO "User"(id, "accountId", "userName", "userNameKey", arn, "isRoot")
       VALUES ($1::text, $1::text, 'root', 'root', 'arn:aws:iam::' || $1::text || ':root', true)`,
      [accountId],
    );
    const started = Date.now();
    await seedListingDevices(pg, accountId, devices, (done) =>
      log(`  ${done.toLocaleString("en-US")} / ${devices.toLocaleString("en-US")} devices`),
    );
    await pg.query(`ANALYZE "VirtualMfaDevice"`);
    log(
      `  seeded ${devices.toLocaleString("en-US")} devices in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  return { accountId, token: await createSession(pg, accountId, accountId) };
}
