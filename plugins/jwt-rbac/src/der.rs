//! Minimal DER writers for host crypto: SubjectPublicKeyInfo of RSA and EC keys (what
//! BoringSSL's `EVP_parse_public_key` reads) and ECDSA signatures as `SEQUENCE { r, s }`.

/// EC curves with an SPKI encoding here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// secp256r1.
    P256,
    /// secp384r1.
    P384,
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

fn tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
}

fn integer(bytes: &[u8], out: &mut Vec<u8>) {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(0x02, &content, out);
}

fn bit_string(content: &[u8], out: &mut Vec<u8>) {
    let mut bits = Vec::with_capacity(content.len() + 1);
    bits.push(0);
    bits.extend_from_slice(content);
    tlv(0x03, &bits, out);
}

/// SPKI DER of an RSA key from its big-endian modulus and exponent.
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut ints = Vec::new();
    integer(n, &mut ints);
    integer(e, &mut ints);
    let mut rsa_key = Vec::new();
    tlv(0x30, &ints, &mut rsa_key);
    let mut algorithm = Vec::new();
    tlv(0x06, OID_RSA, &mut algorithm);
    algorithm.extend_from_slice(&[0x05, 0x00]);
    let mut body = Vec::new();
    tlv(0x30, &algorithm, &mut body);
    bit_string(&rsa_key, &mut body);
    let mut out = Vec::new();
    tlv(0x30, &body, &mut out);
    out
}

/// SPKI DER of an EC key from its uncompressed SEC1 point (`04 || x || y`).
pub fn ec_spki(curve: Curve, point: &[u8]) -> Vec<u8> {
    let mut algorithm = Vec::new();
    tlv(0x06, OID_EC, &mut algorithm);
    let oid = match curve {
        Curve::P256 => OID_P256,
        Curve::P384 => OID_P384,
    };
    tlv(0x06, oid, &mut algorithm);
    let mut body = Vec::new();
    tlv(0x30, &algorithm, &mut body);
    bit_string(point, &mut body);
    let mut out = Vec::new();
    tlv(0x30, &body, &mut out);
    out
}

/// An ECDSA signature `r || s` (JWS form) as DER `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn ecdsa_signature(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut ints = Vec::new();
    integer(r, &mut ints);
    integer(s, &mut ints);
    let mut out = Vec::new();
    tlv(0x30, &ints, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        let mut out = Vec::new();
        integer(&[0, 0, 0x7f], &mut out);
        assert_eq!(out, [0x02, 0x01, 0x7f]);
        out.clear();
        integer(&[0x80], &mut out);
        assert_eq!(out, [0x02, 0x02, 0x00, 0x80]);
        out.clear();
        integer(&[0, 0], &mut out);
        assert_eq!(out, [0x02, 0x01, 0x00]);
    }

    #[test]
    fn long_lengths() {
        let mut out = Vec::new();
        tlv(0x04, &[0; 300], &mut out);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn ec_spki_prefix_is_the_well_known_p256_one() {
        let der = ec_spki(Curve::P256, &[4; 65]);
        assert_eq!(
            &der[..27],
            &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04
            ]
        );
    }
}
