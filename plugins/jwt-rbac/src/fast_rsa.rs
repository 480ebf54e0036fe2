//! RSASSA-PKCS1-v1_5 verification with Montgomery arithmetic on 32-bit limbs.
//!
//! Only public values are involved (signature, modulus, public exponent), so nothing here needs
//! to be constant-time. 32-bit limbs with 64-bit products are what wasm32 multiplies natively;
//! this is several times faster in V8 than the general bignum code of the `rsa` crate, which the
//! PSS decoding is RFC 8017 section 9.1.2 with the salt as long as the hash (RFC 7518). Checked
//! against the `rsa` crate in the tests (every RS* and PS* algorithm, forged and malformed
//! signatures, random inputs to the public operation).

use rsa::traits::PublicKeyParts;
use rsa::BigUint;

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

fn sub_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0u64;
    for (x, y) in a.iter_mut().zip(b) {
        let d = u64::from(*x)
            .wrapping_sub(u64::from(*y))
            .wrapping_sub(borrow);
        *x = d as u32;
        borrow = (d >> 63) & 1;
    }
}

impl FastRsa {
    /// Prepares `key`; `None` for an even modulus or an exponent over 64 bits.
    pub fn new(key: &rsa::RsaPublicKey) -> Option<Self> {
        let n_bytes = key.n().to_bytes_be();
        let e_bytes = key.e().to_bytes_be();
        if e_bytes.len() > 8 || n_bytes.last().is_none_or(|b| b & 1 == 0) {
            return None;
        }
        let e = e_bytes
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let count = n_bytes.len().div_ceil(4);
        let n = limbs(&n_bytes, count);
        let n0 = *n.first()?;
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let r2 = (BigUint::from(1u32) << (64 * count)) % key.n();
        Some(Self {
            n0inv: inv.wrapping_neg(),
            r2: limbs(&r2.to_bytes_be(), count),
            n,
            e,
            size: key.size(),
            bits: n_bytes.len() * 8 - n_bytes.first().map_or(8, |b| b.leading_zeros() as usize),
        })
    }

    /// `a * b / R mod n`.
    fn mont_mul(&self, a: &[u32], b: &[u32]) -> Vec<u32> {
        let k = self.n.len();
        let mut t = vec![0u32; k + 2];
        for &ai in a.iter().take(k) {
            let ai = u64::from(ai);
            let mut c = 0u64;
            for (tj, bj) in t.iter_mut().zip(b).take(k) {
                let s = u64::from(*tj) + ai * u64::from(*bj) + c;
                *tj = s as u32;
                c = s >> 32;
            }
            let s = u64::from(t[k]) + c;
            t[k] = s as u32;
            t[k + 1] = (s >> 32) as u32;
            let m = u64::from(t[0].wrapping_mul(self.n0inv));
            let s = u64::from(t[0]) + m * u64::from(self.n[0]);
            let mut c = s >> 32;
            for j in 1..k {
                let s = u64::from(t[j]) + m * u64::from(self.n[j]) + c;
                t[j - 1] = s as u32;
                c = s >> 32;
            }
            let s = u64::from(t[k]) + c;
            t[k - 1] = s as u32;
            t[k] = t[k + 1] + (s >> 32) as u32;
            t[k + 1] = 0;
        }
        let mut out: Vec<u32> = t[..k].to_vec();
        if t[k] != 0 || !less(&out, &self.n) {
            sub_in_place(&mut out, &self.n);
        }
        out
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
        let base = self.mont_mul(&s, &self.r2);
        let mut acc = base.clone();
        let bits = 64 - self.e.leading_zeros();
        for bit in (0..bits.saturating_sub(1)).rev() {
            acc = self.mont_mul(&acc, &acc);
            if (self.e >> bit) & 1 == 1 {
                acc = self.mont_mul(&acc, &base);
            }
        }
        let mut one = vec![0u32; k];
        one[0] = 1;
        let m = self.mont_mul(&acc, &one);
        let mut out = Vec::with_capacity(k * 4);
        for limb in m.iter().rev() {
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
