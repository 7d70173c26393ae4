/**
 * The one contract between the gateway and the auth worker.
 *
 * Both sides validate with these schemas: the gateway before it enqueues a request and after it
 * reads a reply, the worker when it reads a request. No schema here ever carries a plaintext seed
 * except `ProvisionReply.base32Seed`, which travels once, to the person enrolling.
 */
import { z } from "zod";

export const HASH_ALGORITHMS = ["SHA1", "SHA256", "SHA512"] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** How many burnt steps a device's row keeps, and a request may carry: the highest ones. */
export const MAX_BURNT_STEPS = 32;

/** What the worker needs to know about a device to check a code. Nothing in it is secret. */
export const DeviceStateSchema = z.object({
  /** Stable id of the device row; the replay and attempt keys hang off it. */
  deviceId: z.string().min(1).max(64),
  accountId: z.string().regex(/^\d{12}$/),
  sealedSeed: z.string().min(1).max(1024),
  keyId: z.string().min(1).max(64),
  algorithm: z.enum(HASH_ALGORITHMS).default("SHA1"),
  digits: z.union([z.literal(6), z.literal(8)]).default(6),
  period: z.number().int().min(15).max(120).default(30),
  /** Stored drift, in steps, from the last enrolment or resync. */
  drift: z.number().int(),
  /** The last accepted step as PostgreSQL knows it; the worker takes max(this, Redis). */
  lastStep: z.number().int().nullable(),
  /**
   * Steps burnt by CLOCK_SKEW answers as PostgreSQL knows them; the worker refuses a login code
   * for any of these or of its own. Optional, so a gateway of the previous version still works.
   */
  burntSteps: z.array(z.number().int()).max(MAX_BURNT_STEPS).optional(),
});
export type DeviceState = z.infer<typeof DeviceStateSchema>;

export const VERIFY_MODES = ["login", "enrol", "resync"] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

const code = z.string().regex(/^\d{6,8}$/);

export const RequestSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("ping") }),
  z.object({
    op: z.literal("provision"),
    accountId: z.string().regex(/^\d{12}$/),
    deviceId: z.string().min(1).max(64),
  }),
  z.object({
    op: z.literal("verify"),
    mode: z.enum(VERIFY_MODES),
    device: DeviceStateSchema,
    code1: code,
    /** Required for enrol and resync: the code of the step after code1. */
    code2: code.optional(),
    /** Who is guessing (IP or session); gets its own budget so it cannot lock out others. */
    source: z.string().min(1).max(128),
  }),
  z.object({
    op: z.literal("reseal"),
    device: DeviceStateSchema,
  }),
  /** A deleted device: its verification state in Redis can go now instead of lapsing. */
  z.object({
    op: z.literal("forget"),
    deviceId: z.string().min(1).max(64),
  }),
]);
export type WorkerRequest = z.infer<typeof RequestSchema>;
export type WorkerOp = WorkerRequest["op"];

export const VerifyResultSchema = z.discriminatedUnion("outcome", [
  z.object({ outcome: z.literal("OK"), step: z.number().int(), drift: z.number().int() }),
  z.object({ outcome: z.literal("INVALID") }),
  z.object({ outcome: z.literal("REPLAYED") }),
  z.object({ outcome: z.literal("THROTTLED"), retryAfterSeconds: z.number().int().min(1) }),
  z.object({
    outcome: z.literal("CLOCK_SKEW"),
    offsetSteps: z.number().int(),
    /**
     * The steps this answer burnt: the gateway stores them beside the watermark, so a Redis that
     * loses its data cannot later accept the code the answer recognised. For the gateway only.
     */
    burntSteps: z.array(z.number().int()).optional(),
    /** Redis's time when the script decided, epoch ms: what the device's clock was compared with. */
    serverTime: z.number().int().optional(),
  }),
]);
export type VerifyResult = z.infer<typeof VerifyResultSchema>;

export const PingReplySchema = z.object({ workerId: z.string(), time: z.number() });
export const ProvisionReplySchema = z.object({
  base32Seed: z.string().regex(/^[A-Z2-7]{64}$/),
  sealedSeed: z.string(),
  keyId: z.string(),
});
export const ResealReplySchema = z.object({ sealedSeed: z.string(), keyId: z.string() });
/** Whether the worker held any state for the device. */
export const ForgetReplySchema = z.object({ forgotten: z.boolean() });

/** Maps each op to the schema of its successful reply, so the client is typed per op. */
export const ReplySchemas = {
  ping: PingReplySchema,
  provision: ProvisionReplySchema,
  verify: VerifyResultSchema,
  reseal: ResealReplySchema,
  forget: ForgetReplySchema,
} as const;
export type ReplyFor<Op extends WorkerOp> = z.infer<(typeof ReplySchemas)[Op]>;

/** Numeric-free, closed set of failures a worker may report instead of a result. */
export const WORKER_ERRORS = ["BAD_REQUEST", "UNSEAL_FAILED", "UNAVAILABLE"] as const;
export const ReplyEnvelopeSchema = z.union([
  z.object({ id: z.string(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.string(), ok: z.literal(false), error: z.enum(WORKER_ERRORS) }),
]);
export type ReplyEnvelope = z.infer<typeof ReplyEnvelopeSchema>;
