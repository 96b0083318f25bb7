//! Shamir secret sharing over GF(256) (the AES field, x⁸ + x⁴ + x³ + x + 1):
//! each byte of the secret is the constant term of its own random polynomial
//! of degree `threshold − 1`; share `x` holds the polynomials' values at `x`.
//!
//! ```text
//!  secret[i] ─▶ p_i(X) = secret[i] + a_1 X + … + a_(m−1) X^(m−1)   (a_j random)
//!  share x (1 ..= n) = [p_0(x), p_1(x), …]
//!  any m shares ─▶ Lagrange interpolation at X = 0 ─▶ secret        (m − 1 shares: nothing)
//! ```
//! Multiplication is bitwise (no table lookups indexed by secret data) and
//! every intermediate buffer is zeroized.

use zeroize::Zeroizing;

use crate::Error;

/// One share: its x coordinate (1 ..= 255) and one y byte per secret byte.
pub struct Share {
    pub x: u8,
    pub y: Zeroizing<Vec<u8>>,
}

fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let hi = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & hi);
        b >>= 1;
    }
    p
}

/// a⁻¹ = a²⁵⁴ (0 maps to 0; never asked for).
fn inv(a: u8) -> u8 {
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    r
}

/// Splits `secret` into `n` shares, any `m` of which rebuild it.
pub fn split(secret: &[u8], n: u8, m: u8) -> Result<Vec<Share>, Error> {
    if m < 2 || n < m {
        return Err(Error::Usage(format!(
            "门限应满足 2 ≤ M ≤ N ≤ 255, 现为 M = {m}, N = {n} (threshold must satisfy 2 ≤ M ≤ N)"
        )));
    }
    let degree = usize::from(m - 1);
    let mut coeffs = Zeroizing::new(vec![0u8; secret.len() * degree]);
    flumon_shared::crypto::fill_random(&mut coeffs)?;
    let mut shares = Vec::with_capacity(usize::from(n));
    for x in 1..=n {
        let mut y = Zeroizing::new(Vec::with_capacity(secret.len()));
        for (i, &s) in secret.iter().enumerate() {
            // Horner: ((a_d x + a_(d-1)) x + …) x + s
            let mut acc = 0u8;
            for j in (0..degree).rev() {
                let c = coeffs.get(i * degree + j).copied().unwrap_or(0);
                acc = mul(acc, x) ^ c;
            }
            y.push(mul(acc, x) ^ s);
        }
        shares.push(Share { x, y });
    }
    Ok(shares)
}

/// Rebuilds the secret from shares (distinct x, equal lengths). With fewer
/// shares than the threshold the result is a random-looking wrong value:
/// callers check it against something public (the vault checks the public key).
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let first = shares.first().ok_or_else(|| Error::Usage("没有提供份额 (no shares)".into()))?;
    let len = first.y.len();
    for (i, a) in shares.iter().enumerate() {
        if a.x == 0 || a.y.len() != len {
            return Err(Error::KeyFile("份额格式不一致 (shares do not belong together)".into()));
        }
        if shares.iter().skip(i + 1).any(|b| b.x == a.x) {
            return Err(Error::KeyFile(format!("份额 {} 重复提供 (share given twice)", a.x)));
        }
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    for (i, si) in shares.iter().enumerate() {
        // Lagrange basis at 0: Π_{j≠i} x_j / (x_j − x_i)   (− is ⊕ in GF(2⁸))
        let mut basis = 1u8;
        for (j, sj) in shares.iter().enumerate() {
            if i != j {
                basis = mul(basis, mul(sj.x, inv(sj.x ^ si.x)));
            }
        }
        for (o, &y) in out.iter_mut().zip(si.y.iter()) {
            *o ^= mul(y, basis);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
        assert_eq!(mul(0x57, 0x83), 0xc1); // FIPS-197 example
    }

    #[test]
    fn any_m_of_n() {
        let secret: Vec<u8> = (0..32u8).collect();
        let shares = split(&secret, 5, 3).unwrap();
        let pick = |idx: &[usize]| -> Vec<Share> {
            idx.iter().map(|&i| Share { x: shares[i].x, y: shares[i].y.clone() }).collect()
        };
        for idx in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
            assert_eq!(&combine(&pick(&idx)).unwrap()[..], &secret[..]);
        }
        assert_eq!(&combine(&pick(&[0, 1, 2, 3, 4])).unwrap()[..], &secret[..]);
        assert_ne!(&combine(&pick(&[0, 1])).unwrap()[..], &secret[..]);
        assert!(combine(&pick(&[0, 0, 1])).is_err());
        assert!(split(&secret, 2, 3).is_err());
        assert!(split(&secret, 3, 1).is_err());
    }
}
