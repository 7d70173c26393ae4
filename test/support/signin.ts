/**
 * Sign-in with MFA as a person does it, for tests: password, then a code from the app (oathtool
 * at Redis TIME), or a recovery code; step-up; and reading what the outbox would send.
 *
 * Devices enrolled with `enrolForSignIn` are enabled with codes from a few steps back, so their
 * replay watermark sits behind the clock and the next sign-in codes can be used at once,
 * instead of waiting 30 s for a step the enrolment did not spend.
 */
import { createHmac, randomInt } from "node:crypto";
import { ok, type GraphQLResponse } from "./graphql";
import { PASSWORD } from "./fixtures";
import type { Stack } from "./stack";
import {
  awayFromStepEdge,
  base32Decode,
  codeAt,
  codePair,
  createDevice,
  currentStep,
  ENABLE_DEVICE,
  RESYNC_DEVICE,
  untilNextStep,
} from "./totp";

export const SIGN_IN = `mutation($input: SignInInput!) {
  signIn(input: $input) {
    status
    session { token kind mfaAuthenticated }
    challenge { challenge expiresAt serialNumbers }
  }
}`;

export const ANSWER = `mutation($input: AnswerMfaChallengeInput!) {
  answerMfaChallenge(input: $input) {
    session { token kind mfaAuthenticated expiresAt user { userName isRoot } }
    usedRecoveryCode
    recoveryCodesRemaining
  }
}`;

export const GET_SESSION_TOKEN = `mutation($input: GetSessionTokenInput!) {
  getSessionToken(input: $input) { token kind mfaAuthenticated expiresAt user { userName } }
}`;

export const GENERATE_RECOVERY_CODES = `mutation { generateRecoveryCodes { recoveryCodes generatedAt } }`;

export interface Challenge {
  challenge: string;
  expiresAt: string;
  serialNumbers: string[];
}

export type Answered = {
  answerMfaChallenge: {
    session: { token: string; kind: string; mfaAuthenticated: boolean; expiresAt: string };
    usedRecoveryCode: boolean;
    recoveryCodesRemaining: number;
  };
};

export interface EnrolledDevice {
  serialNumber: string;
  seed: string;
}

/** Headers that make the gateway (TRUST_PROXY=1) see the request as coming from `ip`. */
export const from = (ip: string) => ({ "x-forwarded-for": ip });

/** A fresh documentation-range address, so each test has its own worker budget per source. */
export const randomSource = () => `198.51.100.${randomInt(1, 255)}`;

export type Who = { account: string; userName: string } | { email: string };

function signInInput(who: Who) {
  return "email" in who
    ? { email: who.email, password: PASSWORD }
    : { account: who.account, userName: who.userName, password: PASSWORD };
}

/** Signs in with the password and expects a challenge. */
export async function challengeFor(stack: Stack, who: Who): Promise<Challenge> {
  const data = ok(
    await stack.gql<{ signIn: { status: string; challenge: Challenge | null } }>(SIGN_IN, {
      input: signInInput(who),
    }),
  );
  if (data.signIn.status !== "MFA_REQUIRED" || !data.signIn.challenge) {
    throw new Error(`expected MFA_REQUIRED, got ${data.signIn.status}`);
  }
  return data.signIn.challenge;
}

/** Signs in with the password alone and returns the session token (no device enabled). */
export async function passwordSession(stack: Stack, who: Who): Promise<string> {
  const data = ok(
    await stack.gql<{ signIn: { status: string; session: { token: string } | null } }>(SIGN_IN, {
      input: signInInput(who),
    }),
  );
  if (!data.signIn.session) throw new Error(`expected SIGNED_IN, got ${data.signIn.status}`);
  return data.signIn.session.token;
}

export function answer(
  stack: Stack,
  input: { challenge: string; code: string; serialNumber?: string },
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<Answered>> {
  return stack.gql<Answered>(ANSWER, { input }, undefined, headers);
}

/**
 * Creates a device with `token` and enables it for `userName` with the codes of steps
 * now-8 and now-7, which the enrolment window accepts. The stored drift is then -7, and each
 * sign-in may take the step after the last one at once (see nextCode).
 */
/** The root user's own device, under the name AWS reserves for it, enabled for sign-in. */
export const enrolRootDevice = (stack: Stack, rootToken: string) =>
  enrolForSignIn(stack, rootToken, "root", "root-account-mfa-device");

export async function enrolForSignIn(
  stack: Stack,
  token: string,
  userName: string,
  name: string,
): Promise<EnrolledDevice> {
  const device = await createDevice(stack, token, name);
  const step = await awayFromStepEdge(stack);
  ok(
    await stack.gql(
      ENABLE_DEVICE,
      {
        input: { userName, serialNumber: device.serialNumber, ...codePair(device.seed, step - 8) },
      },
      token,
    ),
  );
  return { serialNumber: device.serialNumber, seed: device.seed };
}

/**
 * The step of the next code a login accepts: above the device's watermark and inside the ±1
 * window around now + drift, as the gateway has them stored.
 */
export async function nextStep(stack: Stack, device: EnrolledDevice): Promise<number> {
  // A worker with the production policy (a separate process) does not let ever later codes move
  // the window (the login recentre gap), so several sign-ins in one step can use up the fresh
  // steps: then wait for the next step, as a person would for their app's next code.
  for (let attempt = 0; attempt < 3; attempt++) {
    await awayFromStepEdge(stack, 3);
    const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber: device.serialNumber },
    });
    const centre = (await currentStep(stack)) + row.drift;
    const step = Math.max((row.lastStep ?? centre - 2) + 1, centre - 1);
    if (step <= centre + 1) return step;
    // Not awayFromStepEdge(stack, STEP_SECONDS - 1): called in a step's first second it did not
    // wait, so two attempts could fall in one step (a CI flake).
    await untilNextStep(stack);
  }
  throw new Error("no fresh step inside the login window");
}

export async function nextCode(stack: Stack, device: EnrolledDevice): Promise<string> {
  return codeAt(device.seed, await nextStep(stack, device));
}

/**
 * A code that is certainly wrong for the device now: the code of no step the worker would
 * accept or even recognise as clock skew (devices enrolled here sit up to 8 steps behind).
 */
export async function wrongCode(stack: Stack, device: EnrolledDevice): Promise<string> {
  const now = await currentStep(stack);
  const near = new Set<string>();
  const key = base32Decode(device.seed);
  for (let s = now - 25; s <= now + 12; s++) near.add(hotp(key, s));
  for (;;) {
    const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
    if (!near.has(code)) return code;
  }
}

/**
 * RFC 4226 in-process, only to rule codes out quickly; codes a test sends come from oathtool.
 */
function hotp(key: Buffer, counter: number): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac("sha1", key).update(message).digest();
  const offset = mac[mac.length - 1]! & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

/**
 * Sends a request while no worker runs, so it waits in the request stream; runs `meanwhile`,
 * then starts a worker and returns the request's answer. So `meanwhile` lands while the code is
 * being checked, as it could under load.
 */
export async function whileCodeIsChecked<T>(
  stack: Stack,
  send: () => Promise<T>,
  meanwhile: () => Promise<unknown>,
): Promise<T> {
  for (const worker of stack.workers.splice(0)) await worker.stop();
  const pending = send();
  await new Promise((resolve) => setTimeout(resolve, 300));
  try {
    await meanwhile();
  } finally {
    await stack.addWorker();
  }
  return pending;
}

/** Password then a TOTP code: an MFA-authenticated session token. */
export async function mfaSession(stack: Stack, who: Who, device: EnrolledDevice): Promise<string> {
  const { challenge } = await challengeFor(stack, who);
  const data = ok(await answer(stack, { challenge, code: await nextCode(stack, device) }));
  return data.answerMfaChallenge.session.token;
}

export async function generateRecoveryCodes(stack: Stack, token: string): Promise<string[]> {
  return ok(
    await stack.gql<{ generateRecoveryCodes: { recoveryCodes: string[] } }>(
      GENERATE_RECOVERY_CODES,
      {},
      token,
    ),
  ).generateRecoveryCodes.recoveryCodes;
}

/** The outbox rows for an account, oldest first, optionally of one kind. */
export function outboxOf(stack: Stack, accountId: string, kind?: string) {
  return stack.db.outboxMessage.findMany({
    where: { accountId, ...(kind ? { kind } : {}) },
    orderBy: { id: "asc" },
  });
}

/** Every operation an access rule is about, as a caller holding `token` sends it. */
export function actionsOf(stack: Stack, token?: string) {
  const gql = (query: string, variables: Record<string, unknown> = {}) =>
    stack.gql(query, variables, token);
  type Codes = { authenticationCode1: string; authenticationCode2: string };
  return {
    createDevice: (name: string) =>
      gql(CREATE_DEVICE_DOC, { input: { virtualMfaDeviceName: name } }),
    enable: (userName: string, serialNumber: string, codes: Codes) =>
      gql(ENABLE_DEVICE, { input: { userName, serialNumber, ...codes } }),
    resync: (userName: string, serialNumber: string, codes: Codes) =>
      gql(RESYNC_DEVICE, { input: { userName, serialNumber, ...codes } }),
    deactivate: (serialNumber: string, userName?: string) =>
      gql(DEACTIVATE_DOC, { input: { serialNumber, userName } }),
    rotate: (userName: string, oldSerialNumber: string, newSerialNumber: string, codes: Codes) =>
      gql(ROTATE_DOC, { input: { userName, oldSerialNumber, newSerialNumber, ...codes } }),
    deleteDevice: (serialNumber: string) => gql(DELETE_DEVICE_DOC, { input: { serialNumber } }),
    tag: (serialNumber: string) =>
      gql(TAG_DOC, { input: { serialNumber, tags: [{ key: "team", value: "blue" }] } }),
    untag: (serialNumber: string) => gql(UNTAG_DOC, { input: { serialNumber, tagKeys: ["team"] } }),
    listDevices: () => gql(LIST_DEVICES_DOC),
    listUserDevices: (userName?: string) => gql(LIST_USER_DEVICES_DOC, { userName }),
    device: (serialNumber: string) => gql(DEVICE_DOC, { serialNumber }),
    user: (userName?: string) => gql(USER_DOC, { userName }),
    users: () => gql(USERS_DOC),
    createUser: (userName: string) => gql(CREATE_USER_DOC, { input: { userName } }),
    deleteUser: (userName: string) => gql(DELETE_USER_DOC, { input: { userName } }),
    updateSettings: () => gql(UPDATE_SETTINGS_DOC, { input: { maxDevicesPerUser: 2 } }),
    getSessionToken: (serialNumber: string, tokenCode: string, durationSeconds?: number) =>
      gql(GET_SESSION_TOKEN, { input: { serialNumber, tokenCode, durationSeconds } }),
    generateRecoveryCodes: () => gql(GENERATE_RECOVERY_CODES),
    userEntity: (userId: string) =>
      gql(ENTITIES_DOC, { representations: [{ __typename: "User", userId }] }),
    signOut: () => gql(`mutation { signOut { signedOut } }`),
  };
}

const CREATE_DEVICE_DOC = `mutation($input: CreateVirtualMfaDeviceInput!) {
  createVirtualMfaDevice(input: $input) { virtualMfaDevice { serialNumber } base32StringSeed }
}`;
const DEACTIVATE_DOC = `mutation($input: DeactivateMfaDeviceInput!) {
  deactivateMfaDevice(input: $input) { serialNumber enableDate }
}`;
const ROTATE_DOC = `mutation($input: RotateMfaDeviceInput!) {
  rotateMfaDevice(input: $input) { enabled { serialNumber } deactivated { serialNumber } }
}`;
const DELETE_DEVICE_DOC = `mutation($input: DeleteVirtualMfaDeviceInput!) {
  deleteVirtualMfaDevice(input: $input) { deleted }
}`;
const TAG_DOC = `mutation($input: TagMfaDeviceInput!) { tagMfaDevice(input: $input) { serialNumber } }`;
const UNTAG_DOC = `mutation($input: UntagMfaDeviceInput!) { untagMfaDevice(input: $input) { serialNumber } }`;
const LIST_DEVICES_DOC = `{ virtualMfaDevices { edges { node { serialNumber } } } }`;
const LIST_USER_DEVICES_DOC = `query($userName: String) {
  mfaDevices(userName: $userName) { edges { node { serialNumber } } }
}`;
const DEVICE_DOC = `query($serialNumber: String!) {
  virtualMfaDevice(serialNumber: $serialNumber) { serialNumber user { userName } }
}`;
const USER_DOC = `query($userName: String) { user(userName: $userName) { userName } }`;
const USERS_DOC = `{ users { edges { node { userName } } } }`;
const CREATE_USER_DOC = `mutation($input: CreateUserInput!) { createUser(input: $input) { userName } }`;
const DELETE_USER_DOC = `mutation($input: DeleteUserInput!) { deleteUser(input: $input) { deleted } }`;
const UPDATE_SETTINGS_DOC = `mutation($input: UpdateAccountSettingsInput!) {
  updateAccountSettings(input: $input) { maxDevicesPerUser }
}`;
const ENTITIES_DOC = `query($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on User { userName } }
}`;

/** The device's next two codes for resync or enable: the steps after its watermark. */
export async function pairAfterWatermark(stack: Stack, device: EnrolledDevice) {
  const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
    where: { serialNumber: device.serialNumber },
  });
  const step = row.lastStep === null ? (await currentStep(stack)) - 8 : row.lastStep + 1;
  return codePair(device.seed, step);
}

/** Codes any fresh device accepts for enabling now (steps now-8 and now-7). */
export async function enrolPair(stack: Stack, device: EnrolledDevice) {
  const step = await awayFromStepEdge(stack);
  return codePair(device.seed, step - 8);
}

/** Creates a device as `token` and returns its serial number and seed, without enabling it. */
export async function newDevice(
  stack: Stack,
  token: string,
  name: string,
): Promise<EnrolledDevice> {
  const device = await createDevice(stack, token, name);
  return { serialNumber: device.serialNumber, seed: device.seed };
}
