/**
 * What an authenticator app scans: the Key Uri (google-authenticator wiki "Key-Uri-Format")
 * and its QR code. AWS's label is `<issuer>:<device name>@<account alias or id>`.
 */
import QRCode from "qrcode";

export interface KeyUriParts {
  issuer: string;
  deviceName: string;
  /** The account alias when set, else the account id, as AWS shows it. */
  accountLabel: string;
  base32Seed: string;
  algorithm: string;
  digits: number;
  period: number;
}

export function keyUri(parts: KeyUriParts): string {
  // The issuer and the account name are encoded separately so the colon between them stays
  // literal; encodeURIComponent writes spaces as %20, which the format requires (not "+").
  const label = `${encodeURIComponent(parts.issuer)}:${encodeURIComponent(
    `${parts.deviceName}@${parts.accountLabel}`,
  )}`;
  const params = [
    `secret=${parts.base32Seed}`,
    `issuer=${encodeURIComponent(parts.issuer)}`,
    `algorithm=${parts.algorithm}`,
    `digits=${parts.digits}`,
    `period=${parts.period}`,
  ];
  return `otpauth://totp/${label}?${params.join("&")}`;
}

/** The URI as a PNG QR code, base64-encoded. */
export async function qrCodePngBase64(uri: string): Promise<string> {
  const png = await QRCode.toBuffer(uri, {
    type: "png",
    errorCorrectionLevel: "M",
    margin: 4,
    scale: 4,
  });
  return png.toString("base64");
}
