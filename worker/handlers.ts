/**
 * What the worker does for each request op, over a keyring and Redis. Shared by the worker
 * process (main.ts) and the test stack, so tests run exactly the production wiring.
 */
import type { Keyring } from "./seal/keyring";
import { createScriptRunner, type RedisConnection } from "./lua/scripts";
import { provisionSeed, resealSeed } from "./provision";
import { createVerifier } from "./verify/verifier";
import type { VerifyPolicyInput } from "./verify/policy";
import type { WorkerHandlers } from "./worker";

export interface HandlerDeps {
  redis: RedisConnection;
  keyring: Keyring;
  prefix: string;
  policy?: VerifyPolicyInput;
}

export function createHandlers(deps: HandlerDeps): WorkerHandlers {
  const verifier = createVerifier({
    scripts: createScriptRunner(deps.redis),
    keyring: deps.keyring,
    prefix: deps.prefix,
    policy: deps.policy,
  });
  return {
    provision: async (request) => provisionSeed(deps.keyring, request),
    verify: (request, requestId) => verifier.verify(request, requestId),
    reseal: async (request) => resealSeed(deps.keyring, request.device),
    forget: async (request) => ({ forgotten: await verifier.forget(request.deviceId) }),
  };
}
