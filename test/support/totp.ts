/**
 * What a person with an authenticator app does, for tests: read the QR code, compute codes
 * with an independent implementation (oathtool), at the time the worker uses (Redis TIME).
 */
import { execFileSync } from "node:child_process";
import jsQR from "jsqr";
import { PNG } from "pngjs";
import { hashToken } from "../../src/auth/tokens";
import { ok } from "./graphql";
import type { Stack } from "./stack";

export const STEP_SECONDS = 30;

/** Redis TIME in seconds: the only clock the worker decides with. */
export async function redisNow(stack: Stack): Promise<number> {
  const redis = stack.redis as unknown as { time(): Promise<[string, string]> };
  const [seconds, micros] = await redis.time();
  return Number(seconds) + Number(micros) / 1e6;
}

/** The TOTP step Redis is in now. */
export async function currentStep(stack: Stack): Promise<number> {
  return Math.floor((await redisNow(stack)) / STEP_SECONDS);
}

/**
 * Waits until the current step has at least `marginSeconds` left, so a test that computes codes
 * and sends them is not split by a step boundary. Returns the step it is then in.
 */
export async function awayFromStepEdge(stack: Stack, marginSeconds = 3): Promise<number> {
  const now = await redisNow(stack);
  if (STEP_SECONDS - (now % STEP_SECONDS) < marginSeconds) await untilNextStep(stack);
  return currentStep(stack);
}

/** Waits until the next step has begun, however early in the current one it is called. */
export async function untilNextStep(stack: Stack): Promise<void> {
  const now = await redisNow(stack);
  await new Promise((r) => setTimeout(r, (STEP_SECONDS - (now % STEP_SECONDS)) * 1000 + 200));
}

/** The code oathtool computes for a base32 secret at a TOTP step (SHA1, 6 digits, 30 s). */
export function codeAt(
  secret: string,
  step: number,
  options: { digits?: number; period?: number; algorithm?: "SHA1" | "SHA256" | "SHA512" } = {},
): string {
  const period = options.period ?? STEP_SECONDS;
  return execFileSync(
    "oathtool",
    [
      `--totp=${options.algorithm ?? "SHA1"}`,
      "--base32",
      `--digits=${options.digits ?? 6}`,
      `--time-step-size=${period}s`,
      `--now=@${step * period}`,
      secret,
    ],
    { encoding: "utf8" },
  ).trim();
}

/** Two consecutive codes, for steps s and s+1, as enrolment and resync want them. */
export function codePair(secret: string, step: number) {
  return {
    authenticationCode1: codeAt(secret, step),
    authenticationCode2: codeAt(secret, step + 1),
  };
}

/** Decodes a base64 PNG QR code to its text, as a phone camera would. */
export function readQrCode(base64Png: string): string {
  const png = PNG.sync.read(Buffer.from(base64Png, "base64"));
  const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  if (!decoded) throw new Error("no QR code found in the image");
  return decoded.data;
}

export interface KeyUri {
  type: string;
  issuerInLabel: string;
  accountName: string;
  params: URLSearchParams;
}

/** Splits an otpauth:// URI the way authenticator apps do. */
export function parseKeyUri(uri: string): KeyUri {
  const match = /^otpauth:\/\/(totp|hotp)\/([^?]+)\?(.*)$/.exec(uri);
  if (!match) throw new Error(`not a Key Uri: ${uri}`);
  const label = decodeURIComponent(match[2]!);
  const colon = label.indexOf(":");
  return {
    type: match[1]!,
    issuerInLabel: colon < 0 ? "" : label.slice(0, colon),
    accountName: colon < 0 ? label : label.slice(colon + 1),
    params: new URLSearchParams(match[3]!),
  };
}

/** RFC 4648 base32 without padding, to look for a seed's raw bytes in other encodings. */
export function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of text.replace(/=+$/, "")) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error("not base32");
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export const CREATE_DEVICE = `mutation($input: CreateVirtualMfaDeviceInput!) {
  createVirtualMfaDevice(input: $input) {
    virtualMfaDevice { serialNumber virtualMfaDeviceName path enableDate user { userName } tags { key value } createDate }
    base32StringSeed otpauthUri qrCodePng
  }
}`;

export const ENABLE_DEVICE = `mutation($input: EnableMfaDeviceInput!) {
  enableMfaDevice(input: $input) { serialNumber enableDate user { userName } }
}`;

export const RESYNC_DEVICE = `mutation($input: ResyncMfaDeviceInput!) {
  resyncMfaDevice(input: $input) { serialNumber enableDate user { userName } }
}`;

export interface CreatedDevice {
  serialNumber: string;
  seed: string;
  otpauthUri: string;
  qrCodePng: string;
}

export async function createDevice(
  stack: Stack,
  token: string,
  name: string,
  extra: { path?: string; tags?: { key: string; value: string }[] } = {},
): Promise<CreatedDevice> {
  const data = ok(
    await stack.gql<{
      createVirtualMfaDevice: {
        virtualMfaDevice: { serialNumber: string };
        base32StringSeed: string;
        otpauthUri: string;
        qrCodePng: string;
      };
    }>(CREATE_DEVICE, { input: { virtualMfaDeviceName: name, ...extra } }, token),
  ).createVirtualMfaDevice;
  return {
    serialNumber: data.virtualMfaDevice.serialNumber,
    seed: data.base32StringSeed,
    otpauthUri: data.otpauthUri,
    qrCodePng: data.qrCodePng,
  };
}

/** Creates a device and enables it for `userName` with the codes for the current step pair. */
export async function enrolDevice(stack: Stack, token: string, userName: string, name: string) {
  const device = await createDevice(stack, token, name);
  const step = await awayFromStepEdge(stack);
  ok(
    await stack.gql(
      ENABLE_DEVICE,
      {
        input: { userName, serialNumber: device.serialNumber, ...codePair(device.seed, step - 1) },
      },
      token,
    ),
  );
  return { ...device, enabledAtStep: step };
}

/**
 * Marks a session as having passed MFA, as answering an MFA challenge would. Tests of rules
 * that need such a session use it instead of depending on the sign-in flow.
 */
export async function markSessionMfaAuthenticated(stack: Stack, token: string): Promise<void> {
  await stack.db.session.update({
    where: { tokenHash: hashToken(token) },
    data: { mfaAuthenticated: true },
  });
}
