/**
 * IAM's name, path and tag rules with AWS's own messages
 * (shared/reference/aws-iam-virtual-mfa.md §1, §4).
 */
import { badInput } from "../errors";

const NAME_PATTERN = /^[\w+=,.@-]+$/;
const PATH_PATTERN = /^(\/|\/[\u0021-\u007E]+\/)$/;
const TAG_KEY_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u;
const TAG_VALUE_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
/** An account id, which sign-in reads as such rather than as an alias. */
export const ACCOUNT_ID_PATTERN = /^\d{12}$/;
/** AWS's longest serial number; a new device's name and path must leave its ARN within it. */
export const MAX_SERIAL_LENGTH = 256;
const MIN_SERIAL_LENGTH = 9;
const SERIAL_PATTERN = /^[\w+=/:,.@-]+$/;
export const MAX_TAGS = 50;

function lengthError(field: string, max: number) {
  return badInput(
    `1 validation error detected: Value at '${field}' failed to satisfy constraint: ` +
      `Member must have length less than or equal to ${max}`,
  );
}

function patternError(field: string, pattern: string) {
  return badInput(
    `1 validation error detected: Value at '${field}' failed to satisfy constraint: ` +
      `Member must satisfy regular expression pattern: ${pattern}`,
  );
}

function checkName(field: string, value: string, max: number): string {
  if (value.length < 1) {
    return fail(
      badInput(
        `1 validation error detected: Value at '${field}' failed to satisfy constraint: ` +
          "Member must have length greater than or equal to 1",
      ),
    );
  }
  if (value.length > max) return fail(lengthError(field, max));
  if (!NAME_PATTERN.test(value)) return fail(patternError(field, "[\\w+=,.@-]+"));
  return value;
}

function fail(error: Error): never {
  throw error;
}

/** A user name given to CreateUser (1–64 characters). */
export const checkNewUserName = (value: string) => checkName("userName", value, 64);
/** A user name that names an existing user (AWS allows 1–128 on these inputs). */
export const checkExistingUserName = (value: string) => checkName("userName", value, 128);
export const checkDeviceName = (value: string) =>
  checkName("virtualMFADeviceName", value, MAX_SERIAL_LENGTH);

export function checkPath(value: string, field = "path"): string {
  if (value.length > 512) throw lengthError(field, 512);
  if (!PATH_PATTERN.test(value)) {
    throw badInput(
      `The specified value for ${field} is invalid. It must begin and end with / and contain ` +
        "only alphanumeric characters and/or / characters.",
    );
  }
  return value;
}

/** A path prefix for listing: like a path, but it need not end with a slash. */
export function checkPathPrefix(value: string): string {
  if (value.length > 512) throw lengthError("pathPrefix", 512);
  if (!/^\/[\u0021-\u007E]*$/.test(value)) {
    throw badInput(
      "The specified value for pathPrefix is invalid. It must begin with / and contain only " +
        "printable ASCII characters.",
    );
  }
  return value;
}

export function checkSerialNumber(value: string): string {
  if (value.length < MIN_SERIAL_LENGTH) {
    throw badInput(
      "1 validation error detected: Value at 'serialNumber' failed to satisfy constraint: " +
        `Member must have length greater than or equal to ${MIN_SERIAL_LENGTH}`,
    );
  }
  if (value.length > MAX_SERIAL_LENGTH) throw lengthError("serialNumber", MAX_SERIAL_LENGTH);
  if (!SERIAL_PATTERN.test(value)) throw patternError("serialNumber", "[\\w+=/:,.@-]+");
  return value;
}

/**
 * A new device's serial number must be one that every later call accepts: AWS sets no limit on
 * the name alone, but a serial number is at most 256 characters, and a path may hold printable
 * characters a serial number may not (`%`, `(`, `~`…). A device created with either could
 * never be named again (not even to delete it).
 */
export function checkNewSerialNumber(serialNumber: string): string {
  if (serialNumber.length > MAX_SERIAL_LENGTH) {
    throw badInput(
      `The device's serial number would be ${serialNumber.length} characters long; it must be ` +
        `at most ${MAX_SERIAL_LENGTH}. Use a shorter virtualMFADeviceName or path.`,
    );
  }
  if (!SERIAL_PATTERN.test(serialNumber)) {
    throw badInput(
      "A device's serial number may hold only letters, digits and +=,.@_- between the " +
        "slashes of its path; choose a path without other characters.",
    );
  }
  return serialNumber;
}

export interface Tag {
  key: string;
  value: string;
}

/** Validates a tag list as a whole: one bad tag fails the request and nothing is changed. */
export function checkTags(tags: Tag[]): Tag[] {
  if (tags.length > MAX_TAGS) throw lengthError("tags", MAX_TAGS);
  const seen = new Set<string>();
  for (const { key, value } of tags) {
    if (key.length < 1 || key.length > 128) throw lengthError("tags.member.key", 128);
    if (!TAG_KEY_PATTERN.test(key)) {
      throw patternError("tags.member.key", "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+");
    }
    // AWS reserves the prefix in any case for its own tags; a user's tag must not pose as one.
    if (key.toLowerCase().startsWith("aws:")) {
      throw badInput("Tag keys beginning with aws: are reserved for AWS use.", "InvalidInput");
    }
    if (value.length > 256) throw lengthError("tags.member.value", 256);
    if (!TAG_VALUE_PATTERN.test(value)) {
      throw patternError("tags.member.value", "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*");
    }
    const folded = key.toLowerCase();
    if (seen.has(folded)) {
      throw badInput(
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
        "InvalidInput",
      );
    }
    seen.add(folded);
  }
  return tags;
}
