/**
 * Re-seals every device's seed under the worker's current key, so an old key can be retired.
 * The gateway never sees a seed: it hands each sealed seed to the worker and stores what comes
 * back. A row changed meanwhile (another reseal, a rotation) is left for the next run.
 */
import type { Db } from "../db";
import type { WorkerClient } from "../../worker/client";
import { deviceState } from "../mfa-devices/code-verification.service";

export interface ResealReport {
  scanned: number;
  resealed: number;
  skipped: number;
}

export async function resealAllDevices(
  db: Db,
  worker: WorkerClient,
  options: { batchSize?: number; onProgress?: (report: ResealReport) => void } = {},
): Promise<ResealReport> {
  const batchSize = options.batchSize ?? 200;
  const report: ResealReport = { scanned: 0, resealed: 0, skipped: 0 };
  let after: string | undefined;
  for (;;) {
    const devices = await db.virtualMfaDevice.findMany({
      where: after === undefined ? {} : { id: { gt: after } },
      orderBy: { id: "asc" },
      take: batchSize,
    });
    if (devices.length === 0) return report;
    after = devices[devices.length - 1]!.id;
    for (const device of devices) {
      report.scanned++;
      const resealed = await worker.call({ op: "reseal", device: deviceState(device) });
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
}
