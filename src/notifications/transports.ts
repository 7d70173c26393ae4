/**
 * How outbox messages leave: email over SMTP, SMS through an HTTP webhook, and, where neither
 * is configured, the log. The log transport records only that a message went out (the sender
 * logs id, channel and masked recipient, never the body); the sender then blanks a one-time
 * code's body as after any delivery (README, "A device, from creation to sign-in").
 */
import nodemailer from "nodemailer";
import type { Channel } from "./outbox";

export interface OutgoingMessage {
  id: bigint;
  channel: string;
  recipient: string;
  kind: string;
  subject: string;
  body: string;
}

export interface Transport {
  /** Shown in the sender's log line: "smtp", "webhook" or "log". */
  readonly name: string;
  /** Resolves once the message is handed over; throws to have it retried later. */
  deliver(message: OutgoingMessage): Promise<void>;
  close?(): void;
}

/** Development: nothing leaves the machine. */
export const logTransport = (): Transport => ({ name: "log", deliver: async () => {} });

export function smtpTransport(url: string, from: string): Transport {
  const mailer = nodemailer.createTransport(url);
  return {
    name: "smtp",
    async deliver(message) {
      await mailer.sendMail({
        from,
        to: message.recipient,
        subject: message.subject,
        text: message.body,
      });
    },
    close: () => mailer.close(),
  };
}

/** POSTs `{ id, to, body }` as JSON; any answer but 2xx is a failure to retry. */
export function webhookTransport(url: string, timeoutMs = 10_000): Transport {
  return {
    name: "webhook",
    async deliver(message) {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: String(message.id), to: message.recipient, body: message.body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      // The body is drained so the connection can be reused; its content is not needed.
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok) throw new Error(`SMS webhook answered HTTP ${response.status}`);
    },
  };
}

export function configuredTransports(config: {
  SMTP_URL?: string;
  SMTP_FROM: string;
  SMS_WEBHOOK_URL?: string;
}): Record<Channel, Transport> {
  return {
    EMAIL: config.SMTP_URL ? smtpTransport(config.SMTP_URL, config.SMTP_FROM) : logTransport(),
    SMS: config.SMS_WEBHOOK_URL ? webhookTransport(config.SMS_WEBHOOK_URL) : logTransport(),
  };
}
