/**
 * The notification outbox: a message is a row written in the same transaction as the event it
 * reports, so an event is never recorded without its notice nor a notice sent for an event
 * that rolled back. A sender (outbox-sender.ts) delivers the rows afterwards.
 */
import type { Db } from "../db";

export const CHANNELS = ["EMAIL", "SMS"] as const;
export type Channel = (typeof CHANNELS)[number];

export interface OutboxEntry {
  accountId: string | null;
  channel: Channel;
  recipient: string;
  /** What the message is about, e.g. "mfa-failures"; never holds user data. */
  kind: string;
  subject: string;
  body: string;
  /** The body carries a one-time code; the sender blanks it once delivered. */
  containsSecret?: boolean;
}

export type OutboxTx = Pick<Db, "outboxMessage">;

export async function enqueue(tx: OutboxTx, ...entries: OutboxEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await tx.outboxMessage.createMany({
    data: entries.map((e) => ({
      accountId: e.accountId,
      channel: e.channel,
      recipient: e.recipient,
      kind: e.kind,
      subject: e.subject,
      body: e.body,
      containsSecret: e.containsSecret ?? false,
    })),
  });
}

export interface NoticeRecipient {
  accountId: string;
  userName: string;
  isRoot: boolean;
  /** The user's own email, or the account's when the user has none (root always has none). */
  email: string;
}

/**
 * Where a user's security notices go. An IAM user without an email of their own is reported to
 * the account's email, as AWS reports to the account's contacts.
 */
export async function noticeRecipient(
  tx: Pick<Db, "user">,
  userId: string,
): Promise<NoticeRecipient | null> {
  const user = await tx.user.findUnique({
    where: { id: userId },
    select: {
      accountId: true,
      userName: true,
      isRoot: true,
      email: true,
      account: { select: { email: true } },
    },
  });
  if (!user) return null;
  return {
    accountId: user.accountId,
    userName: user.userName,
    isRoot: user.isRoot,
    email: user.email ?? user.account.email,
  };
}

/** An email to a user about their own security, as written by one of the message builders. */
export function securityNotice(
  to: NoticeRecipient,
  kind: string,
  message: { subject: string; body: string },
): OutboxEntry {
  return {
    accountId: to.accountId,
    channel: "EMAIL",
    recipient: to.email,
    kind,
    subject: message.subject,
    body: message.body,
  };
}
