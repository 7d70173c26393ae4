import type { Db } from "../db";

export interface AuditEntry {
  accountId: string | null;
  actorUserId: string | null;
  action: string;
  entityType: string;
  entityId?: string | null;
  outcome: "success" | "failure" | "denied";
  sourceIp?: string;
  requestId?: string;
  /** Never holds seeds, codes, passwords or tokens. */
  detail?: Record<string, string | number | boolean | null>;
}

/** Append-only audit trail in PostgreSQL. */
export class AuditService {
  constructor(private readonly db: Db) {}

  async record(entry: AuditEntry, tx: Pick<Db, "auditEvent"> = this.db): Promise<void> {
    await tx.auditEvent.create({
      data: {
        accountId: entry.accountId,
        actorUserId: entry.actorUserId,
        action: entry.action,
        entityType: entry.entityType,
        entityId: entry.entityId ?? null,
        outcome: entry.outcome,
        sourceIp: entry.sourceIp ?? null,
        requestId: entry.requestId ?? null,
        detail: entry.detail ?? {},
      },
    });
  }
}
