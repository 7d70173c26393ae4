/**
 * Re-seals every device's seed under the worker's current key, so an old key can be retired.
 * The gateway never sees a seed: it hands each sealed seed to the worker and stores what comes
 * back. A row changed meanwhile (another reseal, a rotation) is left for the next run.
 *
 * A seal the worker cannot open (a corrupt row, a key already dropped) is reported by serial
 * number and passed over, so one bad row never holds back the rest. The run ends with how
 * many devices each key id holds: retiring a key is safe only once it holds none. Devices can
 * stay under an old key even when every reseal succeeded, because any worker may answer, and
 * one still on the old keyring reseals under the old key again.
 */
import type { Db } from "../db";
import { WorkerRequestError, type WorkerClient } from "../../worker/client";
import { deviceState } from "../mfa-devices/code-verification.service";

export interface ResealReport {
  scanned: number;
  resealed: number;
  skipped: number;
  /** Devices whose seal the worker refused, with its reason (UNSEAL_FAILED, BAD_REQUEST). */
  failed: { serialNumber: string; reason: string }[];
  /** Devices per key id once the run is over. */
  devicesByKeyId: Record<string, number>;
}

export async function resealAllDevices(
  db: Db,
  worker: WorkerClient,
  options: { batchSize?: number; onProgress?: (report: ResealReport) => void } = {},
): Promise<ResealReport> {
  const batchSize = options.batchSize ?? 200;
  const report: ResealReport = {
    scanned: 0,
    resealed: 0,
    skipped: 0,
    failed: [],
    devicesByKeyId: {},
  };
  let after: string | undefined;
  for (;;) {
    const devices = await db.virtualMfaDevice.findMany({
      where: after === undefined ? {} : { id: { gt: after } },
      orderBy: { id: "asc" },
      take: batchSize,
    });
    if (devices.length === 0) break;
    after = devices[devices.length - 1]!.id;
    for (const device of devices) {
      report.scanned++;
      let resealed;
      try {
        resealed = await worker.call({ op: "reseal", device: deviceState(device) });
      } catch (error) {
        // The worker refused this one device; an outage (no worker, no Redis) stops the run.
        if (!(error instanceof WorkerRequestError)) throw error;
        report.failed.push({ serialNumber: device.serialNumber, reason: error.code });
        continue;
      }
      // Compare-and-set on the old seal, so a concurrent change is never overwritten.
      const { count } = await db.virtualMfaDevice.updateMany({
        where: { id: device.id, sealedSeed: device.sealedSeed },
        data: { sealedSeed: resealed.sealedSeed, keyId: resealed.keyId },
      });
      if (count === 1) report.resealed++;
      else report.skipped++;
    }
    options.onProgress?.(report);
  }
  const byKey = await db.virtualMfaDevice.groupBy({ by: ["keyId"], _count: { _all: true } });
  report.devicesByKeyId = Object.fromEntries(byKey.map((row) => [row.keyId, row._count._all]));
  return report;
}

/** Why a finished run does not yet allow retiring the old key, or null when it does. */
export function unfinishedReseal(report: ResealReport): string | null {
  const keys = Object.keys(report.devicesByKeyId);
  if (report.failed.length > 0) {
    const serials = report.failed.map((f) => `${f.serialNumber} (${f.reason})`).join(", ");
    return `${report.failed.length} device(s) could not be resealed: ${serials}`;
  }
  if (keys.length > 1) {
    return (
      `devices remain under ${keys.length} key ids (${JSON.stringify(report.devicesByKeyId)}); ` +
      "a worker still on an older keyring may have answered: give every worker the new keyring " +
      "and run again"
    );
  }
  return null;
}
