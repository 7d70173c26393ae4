import { describe, expect, it } from "vitest";
import { clientAddress, sourceBucket, sourceSite } from "../../src/common/source-bucket";

describe("sourceBucket", () => {
  it("gives every spelling of one IPv4 address, mapped into IPv6 or not, one bucket", () => {
    const buckets = ["10.2.0.1", "::ffff:10.2.0.1", "::ffff:a02:1", "::FFFF:10.2.0.1"].map(
      sourceBucket,
    );
    expect(new Set(buckets)).toEqual(new Set(["10.2.0.1"]));
  });

  it("gives a whole IPv6 /64 one bucket, however it is written, and another /64 its own", () => {
    const sameNetwork = [
      "2001:db8::1",
      "2001:DB8::1",
      "2001:db8:0:0:0:0:0:1",
      "2001:0db8::0001",
      "2001:db8::2",
      "2001:db8::ffff:1",
    ].map(sourceBucket);
    expect(new Set(sameNetwork)).toEqual(new Set(["2001:db8:0:0::/64"]));
    expect(sourceBucket("2001:db8:0:1::1")).toBe("2001:db8:0:1::/64");
  });

  it("puts whatever is not an address into one shared bucket", () => {
    for (const odd of ["unknown", "", "[::1]", "10.2.0.1:1234", "not an ip"]) {
      expect(sourceBucket(odd)).toBe("unparsed");
    }
    expect(sourceBucket("192.0.2.7")).toBe("192.0.2.7");
  });
});

describe("sourceSite", () => {
  it("is an IPv6 source's /48, however written, and nothing for IPv4 or junk", () => {
    const site = ["2001:db8:7::1", "2001:DB8:7:ffff::2", "2001:0db8:0007:1:2:3:4:5"].map(
      sourceSite,
    );
    expect(new Set(site)).toEqual(new Set(["2001:db8:7::/48"]));
    expect(sourceSite("2001:db8:8::1")).toBe("2001:db8:8::/48");
    for (const none of ["10.2.0.1", "::ffff:10.2.0.1", "unknown", ""]) {
      expect(sourceSite(none)).toBeNull();
    }
  });
});

describe("clientAddress", () => {
  it("takes the address out of an address:port entry, and falls back to the peer for junk", () => {
    expect(clientAddress("203.0.113.9:4444", "10.0.0.1")).toBe("203.0.113.9");
    expect(clientAddress("[2001:db8::7]:443", "10.0.0.1")).toBe("2001:db8::7");
    expect(clientAddress("[2001:db8::7]", "10.0.0.1")).toBe("2001:db8::7");
    expect(clientAddress("2001:db8::7", "10.0.0.1")).toBe("2001:db8::7");
    expect(clientAddress("not an address", "10.0.0.1")).toBe("10.0.0.1");
    expect(clientAddress("999.0.0.1:80", "10.0.0.1")).toBe("10.0.0.1");
  });
});
