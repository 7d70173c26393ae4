import type { Db, HotSql } from "../db";
import type { Principal } from "../context";
import { SessionKind } from "./session-kind";
import { hashToken, newToken } from "./tokens";

export const SESSION_TOKEN_PREFIX = "mfas";

/** A SessionKind member or its stored value ("password", "mfa", "sts", "recovery"). */
export type SessionKindValue = SessionKind | `${SessionKind}`;

export interface IssuedSession {
  token: string;
  expiresAt: Date;
  mfaAuthenticated: boolean;
  kind: SessionKindValue;
  userId: string;
}

export interface SessionOptions {
  kind: SessionKindValue;
  mfaAuthenticated: boolean;
  ttlSeconds: number;
}

const KINDS = new Set<string>(Object.values(SessionKind));

interface SessionRow {
  id: string;
  userId: string;
  accountId: string;
  kind: string;
  mfaAuthenticated: boolean;
  expiresAt: Date;
  revokedAt: Date | null;
  isRoot: boolean;
  isAdmin: boolean;
}

export class SessionService {
  constructor(
    private readonly db: Db,
    private readonly sql: HotSql,
  ) {}

  /** Creates a session; pass `tx` to create it together with the event that grants it. */
  async issue(
    user: { id: string; accountId: string },
    options: SessionOptions,
    tx: Pick<Db, "session"> = this.db,
  ): Promise<IssuedSession> {
    const token = newToken(SESSION_TOKEN_PREFIX);
    const expiresAt = new Date(Date.now() + options.ttlSeconds * 1000);
    await tx.session.create({
      data: {
        tokenHash: hashToken(token),
        accountId: user.accountId,
        userId: user.id,
        kind: options.kind,
        mfaAuthenticated: options.mfaAuthenticated,
        expiresAt,
      },
    });
    return {
      token,
      expiresAt,
      mfaAuthenticated: options.mfaAuthenticated,
      kind: options.kind,
      userId: user.id,
    };
  }

  /** Resolves a bearer token to a principal; any doubt (unknown, expired, revoked) is null. */
  async authenticate(token: string): Promise<Principal | null> {
    if (!token.startsWith(`${SESSION_TOKEN_PREFIX}_`) || token.length > 128) return null;
    // One statement on the hot path of every authenticated request, on `pg` directly: Prisma's
    // findUnique with `include` costs two queries and its query compiler (2.7-3.9 ms against
    // 0.45-0.6 ms as one raw JOIN on the benchmark machine; see README "Benchmarks").
    const [session] = await this.sql.rows<SessionRow>(
      `SELECT s."id"::text AS "id", s."userId", s."accountId", s."kind", s."mfaAuthenticated",
              s."expiresAt", s."revokedAt", u."isRoot", u."isAdmin"
       FROM "Session" s JOIN "User" u ON u."id" = s."userId"
       WHERE s."tokenHash" = $1`,
      [hashToken(token)],
      "session-by-token",
    );
    if (!session || session.revokedAt || session.expiresAt.getTime() <= Date.now()) return null;
    // A kind this code does not know grants nothing, rather than being read as a full session.
    if (!KINDS.has(session.kind)) return null;
    return {
      sessionId: session.id,
      userId: session.userId,
      accountId: session.accountId,
      isRoot: session.isRoot,
      isAdmin: session.isAdmin,
      mfaAuthenticated: session.mfaAuthenticated,
      kind: session.kind,
      expiresAt: session.expiresAt,
    };
  }

  /**
   * Ends every live session of a user but `except` (the caller's own, when it should stand),
   * and voids the user's unanswered MFA challenges: after a password change, a root recovery,
   * or an administrator's signOutUser. The count signed out.
   *
   * Sessions are revoked twice: a grant in flight (getSessionToken, answerMfaChallenge) holds
   * a lock on the row it needs (the caller's session, the challenge), so the first pass waits
   * for it to commit, and the second, with a fresh snapshot, ends the session it created.
   */
  async revokeAllOf(
    tx: Pick<Db, "session" | "mfaChallenge">,
    userId: string,
    except?: string,
  ): Promise<number> {
    const now = new Date();
    await tx.mfaChallenge.updateMany({
      where: { userId, consumedAt: null, expiresAt: { gt: now } },
      data: { consumedAt: now },
    });
    const live = {
      userId,
      revokedAt: null,
      expiresAt: { gt: now },
      ...(except === undefined ? {} : { id: { not: except } }),
    };
    const first = await tx.session.updateMany({ where: live, data: { revokedAt: now } });
    const second = await tx.session.updateMany({ where: live, data: { revokedAt: now } });
    return first.count + second.count;
  }

  /**
   * Ends a session and every session derived from it (getSessionToken, at any depth), so none
   * outlives the one it came from. Twice, as revokeAllOf: a grant in flight holds the caller's
   * row, so the first pass waits for it to commit and the second, with a fresh snapshot, ends
   * the session it created.
   */
  async revoke(sessionId: string): Promise<void> {
    const now = new Date().toISOString();
    for (let pass = 0; pass < 2; pass++) {
      await this.db.$executeRaw`
        WITH RECURSIVE "family" AS (
          SELECT "id" FROM "Session" WHERE "id" = ${sessionId}::uuid
          UNION
          SELECT s."id" FROM "Session" s JOIN "family" f ON s."parentId" = f."id"
        )
        UPDATE "Session" SET "revokedAt" = ${now}::timestamp
        WHERE "id" IN (SELECT "id" FROM "family") AND "revokedAt" IS NULL`;
    }
  }
}
