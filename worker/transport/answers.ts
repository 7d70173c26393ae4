/**
 * How a worker answers: acknowledges a request, pushes its reply and, for cacheable ops, stores
 * the reply for retries, all in one MULTI, so a reply is never sent without its request being
 * acknowledged, or vice versa. A crash before the MULTI leaves the request pending.
 *
 * Answers settled in the same turn of the event loop share one MULTI. Requests arrive in batches
 * (one XREADGROUP) and their scripts' replies in one socket read, so they tend to finish
 * together; one MULTI for all of them is one write and one reply instead of one each. On this
 * kind of machine a socket round trip costs more than the TOTP check itself (README, Benchmarks).
 */
import type { ReplyEnvelope } from "../protocol";
import { CONSUMER_GROUP, type TransportKeys, type TransportRedis } from "./keys";

export interface Answer {
  /** The stream entry to acknowledge and delete. */
  entryId: string;
  /** Where to push the reply; absent for an entry dropped without one. */
  replyList?: string;
  reply?: ReplyEnvelope;
  /** Store the reply under this request id, with its request's fingerprint, for retries. */
  remember?: { requestId: string; fingerprint: string };
}

export interface AnswerSenderOptions {
  redis: TransportRedis;
  keys: TransportKeys;
  doneTtlMs: number;
  replyTtlMs: number;
}

interface Queued {
  answer: Answer;
  resolve(): void;
  reject(error: unknown): void;
}

/** Returns `send`, which resolves once the answer's MULTI has run and rejects if it failed. */
export function createAnswerSender(
  options: AnswerSenderOptions,
): (answer: Answer) => Promise<void> {
  const { redis, keys, doneTtlMs, replyTtlMs } = options;
  let queued: Queued[] = [];

  function flush(): void {
    const batch = queued;
    queued = [];
    const tx = redis.multi(keys.requests);
    const repliesByList = new Map<string, string[]>();
    for (const { answer } of batch) {
      if (!answer.reply || !answer.replyList) continue;
      const json = JSON.stringify(answer.reply);
      if (answer.remember) {
        const value = JSON.stringify({
          fingerprint: answer.remember.fingerprint,
          reply: answer.reply,
        });
        tx.set(keys.done(answer.remember.requestId), value, {
          expiration: { type: "PX", value: doneTtlMs },
        });
      }
      const replies = repliesByList.get(answer.replyList);
      if (replies) replies.push(json);
      else repliesByList.set(answer.replyList, [json]);
    }
    for (const [list, replies] of repliesByList) {
      tx.lPush(list, replies).pExpire(list, replyTtlMs);
    }
    const ids = batch.map(({ answer }) => answer.entryId);
    tx.xAck(keys.requests, CONSUMER_GROUP, ids)
      .xDel(keys.requests, ids)
      .exec()
      .then(
        () => batch.forEach((q) => q.resolve()),
        (error: unknown) => batch.forEach((q) => q.reject(error)),
      );
  }

  return (answer) =>
    new Promise<void>((resolve, reject) => {
      // setImmediate runs after the current batch of I/O callbacks and their promise jobs, so
      // every answer they settle is already queued when the MULTI is built.
      if (queued.length === 0) setImmediate(flush);
      queued.push({ answer, resolve, reject });
    });
}
