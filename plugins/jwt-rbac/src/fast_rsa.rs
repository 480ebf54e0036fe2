//! RSA signature verification (RSASSA-PKCS1-v1_5 and RSASSA-PSS) with Montgomery arithmetic on
//! 32-bit limbs, straight from the JWK's `n` and `e` bytes: no general bignum crate.
//!
//! Only public values are involved (signature, modulus, public exponent), so nothing here needs
//! to be constant-time. 32-bit limbs with 64-bit products are what wasm32 multiplies natively;
//! the multiplication (CIOS: multiply and reduce interleaved, one limb of `a` at a time) works in
//! buffers allocated once per signature, not once per product.
//! PSS decoding is RFC 8017 section 9.1.2 with the salt as long as the hash (RFC 7518). Checked
//! against the `rsa` crate in the tests (every RS* and PS* algorithm, forged and malformed
//! signatures, random inputs to the public operation).

/// Largest modulus accepted, in bits (as the `rsa` crate and BoringSSL's default).
pub const MAX_BITS: usize = 4096;
/// Smallest public exponent accepted.
pub const MIN_EXPONENT: u64 = 2;
/// Largest public exponent accepted (`2^33 - 1`, as the `rsa` crate).
pub const MAX_EXPONENT: u64 = (1 << 33) - 1;

/// Why a JWK's `n`/`e` cannot be a verifying key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The modulus is even or zero.
    InvalidModulus,
    /// The modulus is longer than [`MAX_BITS`].
    ModulusTooLarge,
    /// The exponent is outside `MIN_EXPONENT..=MAX_EXPONENT` or not below the modulus.
    InvalidExponent,
}

impl KeyError {
    /// A short lowercase description.
    pub fn message(self) -> &'static str {
        match self {
            Self::InvalidModulus => "invalid modulus",
            Self::ModulusTooLarge => "modulus too large",
            Self::InvalidExponent => "invalid exponent",
        }
    }
}

/// A public key prepared for Montgomery exponentiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastRsa {
    /// Modulus, little-endian 32-bit limbs.
    n: Vec<u32>,
    /// `-n^-1 mod 2^32`.
    n0inv: u32,
    /// `R^2 mod n`, `R = 2^(32 * limbs)`.
    r2: Vec<u32>,
    /// Public exponent.
    e: u64,
    /// Modulus size in bytes.
    size: usize,
    /// Modulus size in bits.
    bits: usize,
}

/// DigestInfo prefixes (RFC 8017 section 9.2, note 1).
const SHA256_PREFIX: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_PREFIX: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_PREFIX: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

fn limbs(bytes_be: &[u8], count: usize) -> Vec<u32> {
    let mut out = vec![0u32; count];
    for (i, byte) in bytes_be.iter().rev().enumerate() {
        if let Some(limb) = out.get_mut(i / 4) {
            *limb |= u32::from(*byte) << (8 * (i % 4));
        }
    }
    out
}

/// `a < b` for equal-length little-endian numbers.
fn less(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b`; returns the borrow out.
fn sub_in_place(a: &mut [u32], b: &[u32]) -> bool {
    let mut borrow = 0u64;
    for (x, y) in a.iter_mut().zip(b) {
        let d = u64::from(*x)
            .wrapping_sub(u64::from(*y))
            .wrapping_sub(borrow);
        *x = d as u32;
        borrow = (d >> 63) & 1;
    }
    borrow != 0
}

/// `a = 2a mod n` for `a < n`.
fn double_mod(a: &mut [u32], n: &[u32]) {
    let mut carry = 0u32;
    for x in a.iter_mut() {
        let top = *x >> 31;
        *x = (*x << 1) | carry;
        carry = top;
    }
    if carry != 0 || !less(a, n) {
        sub_in_place(a, n);
    }
}

/// The big-endian bytes without their leading zeros.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

impl FastRsa {
    /// Prepares the key of big-endian modulus `n` and exponent `e` (leading zeros allowed).
    /// Refuses what the `rsa` crate refuses: an even modulus, more than [`MAX_BITS`], an
    /// exponent outside `2..=2^33-1` or not below the modulus.
    pub fn new(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n_bytes = trim(n);
        let e_bytes = trim(e);
        let Some(&first) = n_bytes.first() else {
            return Err(KeyError::InvalidModulus);
        };
        let bits = n_bytes.len() * 8 - first.leading_zeros() as usize;
        if bits > MAX_BITS {
            return Err(KeyError::ModulusTooLarge);
        }
        if n_bytes.last().is_none_or(|b| b & 1 == 0) {
            return Err(KeyError::InvalidModulus);
        }
        if e_bytes.len() > 8 {
            return Err(KeyError::InvalidExponent);
        }
        let e = e_bytes
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // e < n holds for any modulus over 64 bits; smaller ones are refused later anyway.
        let e_below_n = bits > 64
            || u128::from(e)
                < n_bytes
                    .iter()
                    .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        if !(MIN_EXPONENT..=MAX_EXPONENT).contains(&e) || !e_below_n {
            return Err(KeyError::InvalidExponent);
        }
        let count = n_bytes.len().div_ceil(4);
        let n = limbs(n_bytes, count);
        let n0 = *n.first().ok_or(KeyError::InvalidModulus)?;
        if count == 1 && n0 == 1 {
            return Err(KeyError::InvalidModulus);
        }
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        // R^2 mod n by doubling 1 (2 * 32 * count times): once per key, at configuration.
        let mut r2 = vec![0u32; count];
        if let Some(low) = r2.first_mut() {
            *low = 1;
        }
        for _ in 0..64 * count {
            double_mod(&mut r2, &n);
        }
        Ok(Self {
            n0inv: inv.wrapping_neg(),
            r2,
            n,
            e,
            size: n_bytes.len(),
            bits,
        })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// `out = a * b / R mod n`; `t` is scratch of `k + 1` limbs. One pass per limb of `a`
    /// multiplies and reduces at once (two carry chains: `a_i * b_j` and `m * n_j`).
    fn mont_mul(&self, out: &mut [u32], a: &[u32], b: &[u32], t: &mut [u32]) {
        let k = self.n.len();
        let (n, a, b) = (&self.n[..k], &a[..k], &b[..k]);
        let t = &mut t[..k + 1];
        t.fill(0);
        for &ai in a {
            let ai = u64::from(ai);
            let s = u64::from(t[0]) + ai * u64::from(b[0]);
            let m = u64::from((s as u32).wrapping_mul(self.n0inv));
            let mut c1 = s >> 32;
            let mut c2 = (u64::from(s as u32) + m * u64::from(n[0])) >> 32;
            for j in 1..k {
                let s1 = u64::from(t[j]) + ai * u64::from(b[j]) + c1;
                c1 = s1 >> 32;
                let s2 = u64::from(s1 as u32) + m * u64::from(n[j]) + c2;
                c2 = s2 >> 32;
                t[j - 1] = s2 as u32;
            }
            let s = u64::from(t[k]) + c1 + c2;
            t[k - 1] = s as u32;
            t[k] = (s >> 32) as u32;
        }
        out.copy_from_slice(&t[..k]);
        if t[k] != 0 || !less(out, n) {
            sub_in_place(out, n);
        }
    }

    /// `s^e mod n` as big-endian bytes of the modulus size; `None` if `s >= n`.
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        let k = self.n.len();
        if signature.len() != self.size {
            return None;
        }
        let s = limbs(signature, k);
        if !less(&s, &self.n) {
            return None;
        }
        // One allocation for every buffer: base, acc, tmp (k each) and the scratch (k + 1).
        let mut buffers = vec![0u32; 4 * k + 1];
        let (base, rest) = buffers.split_at_mut(k);
        let (acc, rest) = rest.split_at_mut(k);
        let (tmp, t) = rest.split_at_mut(k);
        self.mont_mul(base, &s, &self.r2, t);
        acc.copy_from_slice(base);
        let bits = 64 - self.e.leading_zeros();
        for bit in (0..bits.saturating_sub(1)).rev() {
            self.mont_mul(tmp, acc, acc, t);
            if (self.e >> bit) & 1 == 1 {
                self.mont_mul(acc, tmp, base, t);
            } else {
                acc.copy_from_slice(tmp);
            }
        }
        // Out of Montgomery form: multiply by 1.
        tmp.fill(0);
        tmp[0] = 1;
        self.mont_mul(base, acc, tmp, t);
        let mut out = Vec::with_capacity(k * 4);
        for limb in base.iter().rev() {
            out.extend_from_slice(&limb.to_be_bytes());
        }
        Some(out.split_off(out.len() - self.size))
    }

    /// Verifies a PKCS#1 v1.5 signature over `digest` (SHA-256, -384 or -512 by its length).
    pub fn verify_pkcs1(&self, digest: &[u8], signature: &[u8]) -> bool {
        let prefix = match digest.len() {
            32 => SHA256_PREFIX,
            48 => SHA384_PREFIX,
            64 => SHA512_PREFIX,
            _ => return false,
        };
        let Some(em) = self.public_op(signature) else {
            return false;
        };
        let t_len = prefix.len() + digest.len();
        if self.size < t_len + 11 {
            return false;
        }
        let pad = self.size - t_len - 3;
        em[0] == 0
            && em[1] == 1
            && em[2..2 + pad].iter().all(|b| *b == 0xff)
            && em[2 + pad] == 0
            && &em[3 + pad..3 + pad + prefix.len()] == prefix
            && &em[3 + pad + prefix.len()..] == digest
    }
}

/// `Hash(parts...)` for the hash of output length `len` (32, 48, 64).
fn hash(len: usize, parts: &[&[u8]]) -> Vec<u8> {
    use sha2::Digest;
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().to_vec()
    }
    match len {
        48 => run::<sha2::Sha384>(parts),
        64 => run::<sha2::Sha512>(parts),
        _ => run::<sha2::Sha256>(parts),
    }
}

impl FastRsa {
    /// Verifies an RSASSA-PSS signature over `digest` (salt length = hash length, MGF1 with the
    /// same hash).
    pub fn verify_pss(&self, digest: &[u8], signature: &[u8]) -> bool {
        let h_len = digest.len();
        if !matches!(h_len, 32 | 48 | 64) {
            return false;
        }
        let Some(m) = self.public_op(signature) else {
            return false;
        };
        let em_bits = self.bits.saturating_sub(1);
        let em_len = em_bits.div_ceil(8);
        let s_len = h_len;
        if em_len < h_len + s_len + 2 || m.len() < em_len {
            return false;
        }
        let (zeros, em) = m.split_at(m.len() - em_len);
        if zeros.iter().any(|b| *b != 0) || em.last() != Some(&0xbc) {
            return false;
        }
        let db_len = em_len - h_len - 1;
        let (masked_db, rest) = em.split_at(db_len);
        let h = &rest[..h_len];
        let top_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8.checked_shr(top_bits as u32).unwrap_or(0);
        if masked_db.first().is_some_and(|b| b & !top_mask != 0) {
            return false;
        }
        let mut db = masked_db.to_vec();
        let mut counter = 0u32;
        let mut at = 0;
        while at < db_len {
            let mask = hash(h_len, &[h, &counter.to_be_bytes()]);
            for (d, m) in db[at..].iter_mut().zip(&mask) {
                *d ^= m;
            }
            at += h_len;
            counter += 1;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        let ps_len = db_len - s_len - 1;
        if db[..ps_len].iter().any(|b| *b != 0) || db[ps_len] != 1 {
            return false;
        }
        let salt = &db[ps_len + 1..];
        hash(h_len, &[&[0u8; 8], digest, salt]) == h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_refusals() {
        let n2048 = [&[0xc5u8][..], &[0x11; 254], &[0x01]].concat();
        assert!(FastRsa::new(&n2048, &[1, 0, 1]).is_ok());
        let with_zeros = [&[0u8, 0][..], &n2048].concat();
        let key = FastRsa::new(&with_zeros, &[0, 1, 0, 1]).unwrap();
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.size, 256);
        let even = [&n2048[..255], &[0x02]].concat();
        assert_eq!(FastRsa::new(&even, &[3]), Err(KeyError::InvalidModulus));
        assert_eq!(FastRsa::new(&[0, 0], &[3]), Err(KeyError::InvalidModulus));
        assert_eq!(
            FastRsa::new(&[0xff; 513], &[3]),
            Err(KeyError::ModulusTooLarge)
        );
        for e in [&[1u8][..], &[0], &[2, 0, 0, 0, 0], &[1; 9]] {
            assert_eq!(FastRsa::new(&n2048, e), Err(KeyError::InvalidExponent));
        }
        assert!(FastRsa::new(&n2048, &[1, 0xff, 0xff, 0xff, 0xff]).is_ok());
        assert_eq!(
            FastRsa::new(&[0x0b], &[0x0d]),
            Err(KeyError::InvalidExponent)
        );
    }

    #[test]
    fn small_modulus_arithmetic() {
        // n = 3233 = 61 * 53, e = 17: 65^17 mod 3233 = 2790 (the textbook example).
        let key = FastRsa::new(&[0x0c, 0xa1], &[17]).unwrap();
        assert_eq!(key.public_op(&[0x00, 65]), Some(vec![0x0a, 0xe6]));
        assert_eq!(key.public_op(&[0x0c, 0xa1]), None, "s = n");
    }
}
