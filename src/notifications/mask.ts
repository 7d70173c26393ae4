/** Recipients as logs may show them: enough to tell messages apart, not enough to contact. */

/** `alice@example.com` → `a***@example.com`. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at < 1) return "***";
  return `${email[0]}***${email.slice(at)}`;
}

/** `+14155550100` → `+*******0100`. */
export function maskPhone(phone: string): string {
  if (phone.length <= 4) return "***";
  return `${phone.startsWith("+") ? "+" : ""}${"*".repeat(Math.max(3, phone.length - 5))}${phone.slice(-4)}`;
}

export const maskRecipient = (channel: string, recipient: string) =>
  channel === "SMS" ? maskPhone(recipient) : maskEmail(recipient);
