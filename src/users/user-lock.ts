import type { Db } from "../db";

type Tx = Pick<Db, "$queryRaw">;

/**
 * Locks a user's row for the rest of the transaction, so changes to what the user holds
 * (devices, recovery codes) are made one at a time. NO KEY UPDATE does not block the user's
 * sign-ins; it still waits for deleteUser, which locks the row FOR UPDATE. False when the
 * user is gone.
 */
export async function lockUser(tx: Tx, userId: string): Promise<boolean> {
  const rows = await tx.$queryRaw<{ id: string }[]>`
    SELECT "id" FROM "User" WHERE "id" = ${userId} FOR NO KEY UPDATE`;
  return rows.length === 1;
}
