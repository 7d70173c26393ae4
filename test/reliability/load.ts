/**
 * Steady load for the fault tests: getSessionToken with correct codes on many devices (each
 * device at most once per 30 s step), deliberately wrong codes on decoy devices, and replays of
 * codes already accepted. Every response is classified and kept, so a test can print and check
 * what happened: sent, answered, refused as unavailable, wrongly accepted, lost.
 */
import { createHmac, randomInt } from "node:crypto";
import { GET_SESSION_TOKEN } from "../support/signin";
import type { Stack } from "../support/stack";
import { base32Decode, STEP_SECONDS } from "../support/totp";

export interface LoadDevice {
  userName: string;
  userId: string;
  serialNumber: string;
  seed: string;
  /** A password session opened before the device was enabled. */
  token: string;
  /** The drift the product has stored, as far as the load knows. */
  drift: number;
  /** Highest step ever sent for this device, whatever became of it. */
  lastSent: number;
}

type Kind = "correct" | "wrong" | "replay";
export type Verdict =
  | "accepted" // a correct code, accepted
  | "refused" // a wrong code or a replay, refused (INVALID_AUTHENTICATION_CODE or RATE_LIMITED)
  | "unavailable" // SERVICE_UNAVAILABLE
  | "wrongly-accepted" // a wrong code or a replay accepted, or one (device, step) accepted twice
  | "correct-refused" // a correct, fresh code refused as invalid or rate limited
  | "lost"; // no answer within the deadline, a transport error, or any other error

export interface LoadRecord {
  kind: Kind;
  serialNumber: string;
  step: number;
  verdict: Verdict;
  detail?: string;
  ms: number;
  at: number;
}

export const CLIENT_DEADLINE_MS = 6000;
const stepNow = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);

/**
 * RFC 6238 code for a step, computed here rather than with oathtool (a process per code) because
 * the load needs thousands; test/worker/totp.test.ts checks the product against oathtool.
 */
export function codeAt(seed: string, step: number): string {
  const message = Buffer.alloc(8);
  message.writeUInt32BE(Math.floor(step / 0x1_0000_0000), 0);
  message.writeUInt32BE(step >>> 0, 4);
  const mac = createHmac("sha1", base32Decode(seed)).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fff_ffff) % 1_000_000).padStart(6, "0");
}

/** Wrong: a code that matches no step within ±30 of now for this seed. */
function wrongCodeFor(seed: string, centre: number): string {
  const near = new Set<string>();
  for (let s = centre - 30; s <= centre + 30; s++) near.add(codeAt(seed, s));
  for (;;) {
    const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
    if (!near.has(code)) return code;
  }
}

export class SteadyLoad {
  readonly records: LoadRecord[] = [];
  /** (serialNumber, step) → how many times it was accepted. */
  readonly acceptedSteps = new Map<string, number>();
  private running = false;
  private loops: Promise<void>[] = [];
  private iteration = 0;
  /** The wall-clock step in which each device last got a correct code. */
  private readonly sentInStep = new Map<string, number>();

  constructor(
    private readonly stack: Stack,
    readonly devices: LoadDevice[],
    readonly decoys: LoadDevice[],
    private readonly concurrency = 4,
  ) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) this.loops.push(this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop() {
    while (this.running) {
      const i = this.iteration++;
      if (i % 8 === 5) await this.replay();
      else if (i % 4 === 3) await this.wrong();
      else if (!(await this.correct())) await this.wrong();
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  /** Sends a correct code for the next fresh step of a device that has one; false if none. */
  async correct(): Promise<boolean> {
    const now = stepNow();
    // Spread each step's codes evenly over the step, so correct codes arrive steadily and a
    // recovery shows within a second instead of at the next step.
    const elapsed = (Date.now() / 1000 / STEP_SECONDS) % 1;
    const usedThisStep = [...this.sentInStep.values()].filter((step) => step === now).length;
    if (usedThisStep >= Math.ceil(elapsed * this.devices.length) + 1) return false;
    const device = this.devices.find((d) => d.lastSent < now + d.drift);
    if (!device) return false;
    const step = Math.max(device.lastSent + 1, now + device.drift);
    device.lastSent = step;
    this.sentInStep.set(device.serialNumber, now);
    const record = await this.send("correct", device, codeAt(device.seed, step), step);
    if (record.verdict === "accepted") device.drift = step - now;
    return true;
  }

  async wrong(): Promise<void> {
    const decoy = this.decoys[this.iteration % this.decoys.length]!;
    await this.send("wrong", decoy, wrongCodeFor(decoy.seed, stepNow() + decoy.drift), -1);
  }

  /** Replays a code that was accepted before: it must never be accepted again. */
  async replay(): Promise<void> {
    const accepted = this.records.filter((r) => r.verdict === "accepted");
    if (!accepted.length) return this.wrong();
    const pick = accepted[randomInt(0, accepted.length)]!;
    const device = this.devices.find((d) => d.serialNumber === pick.serialNumber)!;
    await this.send("replay", device, codeAt(device.seed, pick.step), pick.step);
  }

  /** Replays the last accepted code of every device, e.g. right after Redis lost its state. */
  async replayAllLatest(): Promise<void> {
    for (const device of this.devices) {
      const last = this.records
        .filter((r) => r.verdict === "accepted" && r.serialNumber === device.serialNumber)
        .at(-1);
      if (last) await this.send("replay", device, codeAt(device.seed, last.step), last.step);
    }
  }

  private async send(kind: Kind, device: LoadDevice, code: string, step: number) {
    const started = performance.now();
    let verdict: Verdict;
    let detail: string | undefined;
    try {
      const res = await Promise.race([
        this.stack.gql<{ getSessionToken: { token: string; mfaAuthenticated: boolean } }>(
          GET_SESSION_TOKEN,
          { input: { serialNumber: device.serialNumber, tokenCode: code } },
          device.token,
          // A fresh source per request, so wrong codes never exhaust one source's budget.
          {
            "x-forwarded-for": `10.${randomInt(0, 256)}.${randomInt(0, 256)}.${randomInt(1, 255)}`,
          },
        ),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("no answer within the deadline")), CLIENT_DEADLINE_MS),
        ),
      ]);
      const errorCode = res.errors?.[0]?.extensions?.code as string | undefined;
      if (res.data?.getSessionToken?.mfaAuthenticated && !res.errors) {
        const key = `${device.serialNumber}#${step}`;
        const times = (this.acceptedSteps.get(key) ?? 0) + 1;
        this.acceptedSteps.set(key, times);
        verdict = kind === "correct" && times === 1 ? "accepted" : "wrongly-accepted";
      } else if (errorCode === "SERVICE_UNAVAILABLE") {
        verdict = "unavailable";
      } else if (errorCode === "INVALID_AUTHENTICATION_CODE" || errorCode === "RATE_LIMITED") {
        verdict = kind === "correct" ? "correct-refused" : "refused";
        detail = `${errorCode}${res.errors?.[0]?.extensions?.reason ? `/${String(res.errors[0].extensions.reason)}` : ""}`;
      } else {
        verdict = "lost";
        detail = JSON.stringify(res.errors ?? res.data).slice(0, 300);
      }
    } catch (error) {
      verdict = "lost";
      detail = (error as Error).message;
    }
    const record: LoadRecord = {
      kind,
      serialNumber: device.serialNumber,
      step,
      verdict,
      detail,
      ms: Math.round(performance.now() - started),
      at: Date.now(),
    };
    this.records.push(record);
    return record;
  }

  /** Counts over the records from `since` (an index into records) on. */
  counts(since = 0) {
    const slice = this.records.slice(since);
    const count = (v: Verdict) => slice.filter((r) => r.verdict === v).length;
    return {
      sent: slice.length,
      answered: count("accepted") + count("refused"),
      accepted: count("accepted"),
      refusedWrongOrReplay: count("refused"),
      unavailable: count("unavailable"),
      wronglyAccepted: count("wrongly-accepted"),
      correctRefused: count("correct-refused"),
      lost: count("lost"),
      slowestMs: slice.reduce((max, r) => Math.max(max, r.ms), 0),
    };
  }
}
