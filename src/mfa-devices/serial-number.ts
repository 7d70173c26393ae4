/**
 * Virtual MFA serial numbers are ARNs: arn:aws:iam::<account>:mfa<path><name>
 * (shared/reference/aws-iam-virtual-mfa.md §4).
 */

/** The name AWS gives the root user's virtual device; only root may create or hold it. */
export const ROOT_DEVICE_NAME = "root-account-mfa-device";

export const deviceSerialNumber = (accountId: string, path: string, name: string) =>
  `arn:aws:iam::${accountId}:mfa${path}${name}`;

/**
 * The account a serial number names, or null when it is not a virtual device ARN at all
 * (a hardware serial such as ABCD12345678). Lets a caller refuse another account's serial
 * before looking anything up, so the answer never depends on whether it exists.
 */
export function accountOfSerialNumber(serialNumber: string): string | null {
  return /^arn:aws:iam::(\d{12}):mfa\//.exec(serialNumber)?.[1] ?? null;
}

/** In any case: a variant would pass for root's device with people and case-blind scripts. */
export const isReservedDeviceName = (name: string) => name.toLowerCase() === ROOT_DEVICE_NAME;
