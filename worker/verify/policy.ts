/**
 * How wide the verifier looks for a code and how hard it throttles guessing.
 *
 * Windows are in TOTP steps. Attempt limits come in three layers (see DESIGN.md "Verification
 * rules"): per (device, source) pair, per device across sources, per source across devices.
 */
import { z } from "zod";

const steps = (max: number) => z.number().int().min(0).max(max);
const seconds = z.number().int().min(1);
const DAY = 86_400;

export const VerifyPolicySchema = z
  .object({
    /** Login accepts now + drift ± this. One step either side, as every mainstream verifier. */
    loginRadius: steps(3).default(1),
    /** Enable (two consecutive codes) searches now ± this; the stored drift is ignored. */
    enrolRadius: steps(60).default(10),
    /** Resync (two consecutive codes) searches now ± this, to re-centre a drifted device. */
    resyncRadius: steps(200).default(40),
    /**
     * How far beyond the acceptance window a match is still recognised. Such a match is never
     * accepted; it is reported as CLOCK_SKEW{offsetSteps} so the user can be told to resync.
     */
    classifyRadius: steps(60).default(10),
    /** A login may re-centre the drift by a step at a time, but never beyond ± this ... */
    maxLoginDrift: steps(60).default(10),
    /** ... while enrol and resync, which prove two consecutive codes, may record up to ± this. */
    maxEnrolDrift: steps(200).default(40),
    /**
     * A login re-centres the drift only when the device's last acceptance is at least this old,
     * so the window follows a slowly drifting clock but a run of ever later codes cannot walk
     * it ahead of the owner's clock (verify-3.lua).
     */
    loginRecentreSeconds: z.number().int().min(0).default(3600),

    /**
     * Layer a, per (device, source): `pairFree` failures may come back to back; the pairFree-th
     * failure locks the pair for pairBaseSeconds, and each further failure doubles the lock, up
     * to pairCapSeconds. With 3 / 1 s / 5 days one source gets at most 93 guesses a year (see
     * `guessesPerYear`); a 4-day cap would allow 111, because the ramp adds about 20.
     */
    pairFree: z.number().int().min(1).default(3),
    pairBaseSeconds: seconds.default(1),
    pairCapSeconds: seconds.default(5 * DAY),
    /**
     * How long a pair's failure count survives without a new failure. It must be long: an
     * attacker who waits for the count to lapse regains ~22 quick guesses, which must cost more
     * time than guessing at the cap rate would (22 guesses × 5 days ≈ 110 days < 180).
     */
    pairMemorySeconds: seconds.default(180 * DAY),

    /**
     * Layer b, per device across the sources not known to it (see below): stops many sources
     * guessing together. It never holds back a known source, so it cannot lock the owner out,
     * and may therefore lock for days: with 10 / 1 s / 7 days, any number of sources together
     * get at most 80 guesses a year at one device. (When it also held back the owner it had to
     * stay at 15 minutes, which let a thousand sources guess ~36,500 times a year.)
     */
    deviceFree: z.number().int().min(1).default(10),
    deviceBaseSeconds: seconds.default(1),
    deviceCapSeconds: seconds.default(7 * DAY),
    /**
     * As for the pair layer: waiting for the count to lapse must cost more than guessing at the
     * cap rate (10 free + ~20 ramp guesses at 7 days each ≈ 210 days).
     */
    deviceMemorySeconds: seconds.default(210 * DAY),
    /**
     * A source that has succeeded on a device within this long is known to it: the owner's
     * networks. Only the most recent `knownSourcesKept` are remembered per device.
     */
    knownSourceMemorySeconds: seconds.default(90 * DAY),
    knownSourcesKept: z.number().int().min(1).max(1000).default(20),

    /** Layer c, per source across all devices: a fixed-window failure budget. */
    sourceBudget: z.number().int().min(1).default(30),
    sourceWindowSeconds: seconds.default(10 * 60),

    /** How long a request id's result is kept, so a retry gets the first answer. */
    resultTtlSeconds: seconds.default(10 * 60),
    /** How long Redis keeps a device's watermark and burnt steps after the last change. */
    watermarkTtlSeconds: seconds.default(DAY),
  })
  .strict()
  .refine((p) => p.pairMemorySeconds >= p.pairCapSeconds, {
    message: "pairMemorySeconds must be at least pairCapSeconds",
  })
  .refine((p) => p.deviceMemorySeconds >= p.deviceCapSeconds, {
    message: "deviceMemorySeconds must be at least deviceCapSeconds",
  })
  .refine(
    (p) => p.pairBaseSeconds <= p.pairCapSeconds && p.deviceBaseSeconds <= p.deviceCapSeconds,
    {
      message: "a base lock cannot exceed its cap",
    },
  )
  .refine((p) => p.watermarkTtlSeconds >= watermarkRelevanceSeconds(p), {
    // A watermark only matters while a step at or below it can still fall inside some window:
    // at most 2 × (widest radius + classification + largest drift) steps of the longest period.
    message: "watermarkTtlSeconds is shorter than the time a watermark can still matter",
  });

export type VerifyPolicy = z.infer<typeof VerifyPolicySchema>;
export type VerifyPolicyInput = z.input<typeof VerifyPolicySchema>;

const LONGEST_PERIOD_SECONDS = 120;

interface Windows {
  loginRadius: number;
  enrolRadius: number;
  resyncRadius: number;
  classifyRadius: number;
  maxEnrolDrift: number;
}

function watermarkRelevanceSeconds(p: Windows): number {
  const widest = Math.max(p.loginRadius, p.enrolRadius, p.resyncRadius) + p.classifyRadius;
  return 2 * (widest + p.maxEnrolDrift) * LONGEST_PERIOD_SECONDS;
}

/** Validates a partial policy and fills in every default. Throws a ZodError listing all issues. */
export function parsePolicy(input: VerifyPolicyInput = {}): VerifyPolicy {
  return VerifyPolicySchema.parse(input);
}

export const DEFAULT_POLICY: VerifyPolicy = parsePolicy();

/**
 * The most guesses one exponential-backoff layer allows in `horizonSeconds`, for a guesser who
 * tries again the moment each lock ends: `free` back-to-back failures, then locks of
 * base·2^(n−free) seconds after the n-th failure, capped at `cap`.
 */
export function guessesPerYear(
  free: number,
  baseSeconds: number,
  capSeconds: number,
  horizonSeconds = 365 * DAY,
): number {
  let elapsed = 0;
  let guesses = 0;
  for (let n = 1; elapsed <= horizonSeconds; n++) {
    guesses = n; // the n-th guess happens at `elapsed`
    const lock = n >= free ? Math.min(capSeconds, baseSeconds * 2 ** (n - free)) : 0;
    elapsed += lock;
  }
  return guesses;
}
