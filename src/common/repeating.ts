/**
 * A background job that runs in rounds: one now, then one after each pause, until stopped. Any
 * number of gateways may run the same job; the jobs themselves make that safe (SKIP LOCKED).
 */
export interface RepeatingJob {
  start(): void;
  /** Stops the schedule and waits for a round in progress. */
  stop(): Promise<void>;
}

export function repeating(options: {
  /** One round; resolving `true` means more work is waiting, so the next round starts at once. */
  round(): Promise<boolean>;
  pauseMs: number;
  /** A failed round is reported here and the schedule goes on. */
  onError(error: unknown): void;
}): RepeatingJob {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = true;

  const tick = () => {
    running = options
      .round()
      .catch((error: unknown) => {
        options.onError(error);
        return false;
      })
      .then((more) => {
        if (!stopped) timer = setTimeout(tick, more ? 0 : options.pauseMs);
      });
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      tick();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
