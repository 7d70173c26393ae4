/**
 * What the service accepts as an email address: one bare address, `local@domain`, and nothing
 * a mail library would read differently. A looser check let `x1,victim@corp.example` and
 * `Name <victim@corp.example>` through: each a distinct, unique account email, which nodemailer
 * then delivered to the same mailbox, past every per-recipient limit.
 *
 * The local part is RFC 5322's dot-atom (no quoted strings, no comments, no commas or angle
 * brackets); the domain is dot-separated LDH labels with a top-level label of letters.
 */
const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function isBareEmailAddress(email: string): boolean {
  if (email.length > 254) return false;
  const at = email.lastIndexOf("@");
  const local = email.slice(0, at);
  const labels = email.slice(at + 1).split(".");
  return (
    at > 0 &&
    local.length <= 64 &&
    LOCAL.test(local) &&
    labels.length >= 2 &&
    labels.every((label) => LABEL.test(label)) &&
    /^[A-Za-z]{2,63}$/.test(labels.at(-1)!)
  );
}
