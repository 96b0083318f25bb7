//! SM3 (GB/T 32905) compression, flumon's own: fully unrolled rounds with the
//! rotated constants T_j <<< j precomputed, the message schedule expanded on
//! the fly in a 16-word ring, the eight working words renamed round by round
//! instead of shifted, and the HMAC pads folded in once (sm3_hmac.rs).
//!
//! ```text
//!   bytes ─▶ Sm3State::update ─▶ 64-byte blocks ─▶ compress ─▶ finalize (padding) ─▶ [u8; 32]
//! ```
//! Pure safe Rust; checked against the GB/T 32905 vectors and, by proptest,
//! against the `sm3` crate (see sm3_tests.rs).

use zeroize::Zeroize;

/// SM3 initial value.
pub(crate) const IV: [u32; 8] =
    [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e];

/// T_j <<< (j mod 32), j = 0..64.
const T: [u32; 64] = [
    0x79cc4519, 0xf3988a32, 0xe7311465, 0xce6228cb, 0x9cc45197, 0x3988a32f, 0x7311465e, 0xe6228cbc, 0xcc451979,
    0x988a32f3, 0x311465e7, 0x6228cbce, 0xc451979c, 0x88a32f39, 0x11465e73, 0x228cbce6, 0x9d8a7a87, 0x3b14f50f,
    0x7629ea1e, 0xec53d43c, 0xd8a7a879, 0xb14f50f3, 0x629ea1e7, 0xc53d43ce, 0x8a7a879d, 0x14f50f3b, 0x29ea1e76,
    0x53d43cec, 0xa7a879d8, 0x4f50f3b1, 0x9ea1e762, 0x3d43cec5, 0x7a879d8a, 0xf50f3b14, 0xea1e7629, 0xd43cec53,
    0xa879d8a7, 0x50f3b14f, 0xa1e7629e, 0x43cec53d, 0x879d8a7a, 0x0f3b14f5, 0x1e7629ea, 0x3cec53d4, 0x79d8a7a8,
    0xf3b14f50, 0xe7629ea1, 0xcec53d43, 0x9d8a7a87, 0x3b14f50f, 0x7629ea1e, 0xec53d43c, 0xd8a7a879, 0xb14f50f3,
    0x629ea1e7, 0xc53d43ce, 0x8a7a879d, 0x14f50f3b, 0x29ea1e76, 0x53d43cec, 0xa7a879d8, 0x4f50f3b1, 0x9ea1e762,
    0x3d43cec5,
];

#[inline(always)]
fn p0(x: u32) -> u32 {
    x ^ x.rotate_left(9) ^ x.rotate_left(17)
}

#[inline(always)]
fn p1(x: u32) -> u32 {
    x ^ x.rotate_left(15) ^ x.rotate_left(23)
}

/// One SM3 compression of the 16 message words `x` into `state`.
#[inline(always)]
pub(crate) fn compress(state: &mut [u32; 8], mut x: [u32; 16]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    // W_k = P1(W_k-16 ^ W_k-9 ^ W_k-3 <<< 15) ^ W_k-13 <<< 7 ^ W_k-6, written over W_k-16
    macro_rules! expand {
        ($x:ident, $k:literal, $k9:literal, $k3:literal, $k13:literal, $k6:literal) => {{
            let v = p1($x[$k] ^ $x[$k9] ^ $x[$k3].rotate_left(15)) ^ $x[$k13].rotate_left(7) ^ $x[$k6];
            $x[$k] = v;
            v
        }};
    }
    // W_65..W_67: used once, not stored (W_64 is, for W_67)
    macro_rules! expand_last {
        ($x:ident, $k:literal, $k9:literal, $k3:literal, $k13:literal, $k6:literal) => {
            p1($x[$k] ^ $x[$k9] ^ $x[$k3].rotate_left(15)) ^ $x[$k13].rotate_left(7) ^ $x[$k6]
        };
    }
    // rounds 0..16: FF = GG = x ^ y ^ z
    macro_rules! r1 {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $t:expr, $w:expr, $w4:expr) => {{
            let w = $w;
            let w4 = $w4;
            let a12 = $a.rotate_left(12);
            let ss1 = a12.wrapping_add($e).wrapping_add($t).rotate_left(7);
            let ss2 = ss1 ^ a12;
            $d = ($a ^ $b ^ $c).wrapping_add($d).wrapping_add(ss2).wrapping_add(w ^ w4);
            $h = ($e ^ $f ^ $g).wrapping_add($h).wrapping_add(ss1).wrapping_add(w);
            $b = $b.rotate_left(9);
            $f = $f.rotate_left(19);
            $h = p0($h);
        }};
    }
    // rounds 16..64: FF = majority, GG = choose
    macro_rules! r2 {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $t:expr, $w:expr, $w4:expr) => {{
            let w = $w;
            let w4 = $w4;
            let a12 = $a.rotate_left(12);
            let ss1 = a12.wrapping_add($e).wrapping_add($t).rotate_left(7);
            let ss2 = ss1 ^ a12;
            let ff = ($a & $b) | (($a | $b) & $c);
            let gg = (($f ^ $g) & $e) ^ $g;
            $d = ff.wrapping_add($d).wrapping_add(ss2).wrapping_add(w ^ w4);
            $h = gg.wrapping_add($h).wrapping_add(ss1).wrapping_add(w);
            $b = $b.rotate_left(9);
            $f = $f.rotate_left(19);
            $h = p0($h);
        }};
    }
    r1!(a, b, c, d, e, f, g, h, T[0], x[0], x[4]);
    r1!(d, a, b, c, h, e, f, g, T[1], x[1], x[5]);
    r1!(c, d, a, b, g, h, e, f, T[2], x[2], x[6]);
    r1!(b, c, d, a, f, g, h, e, T[3], x[3], x[7]);
    r1!(a, b, c, d, e, f, g, h, T[4], x[4], x[8]);
    r1!(d, a, b, c, h, e, f, g, T[5], x[5], x[9]);
    r1!(c, d, a, b, g, h, e, f, T[6], x[6], x[10]);
    r1!(b, c, d, a, f, g, h, e, T[7], x[7], x[11]);
    r1!(a, b, c, d, e, f, g, h, T[8], x[8], x[12]);
    r1!(d, a, b, c, h, e, f, g, T[9], x[9], x[13]);
    r1!(c, d, a, b, g, h, e, f, T[10], x[10], x[14]);
    r1!(b, c, d, a, f, g, h, e, T[11], x[11], x[15]);
    r1!(a, b, c, d, e, f, g, h, T[12], x[12], expand!(x, 0, 7, 13, 3, 10));
    r1!(d, a, b, c, h, e, f, g, T[13], x[13], expand!(x, 1, 8, 14, 4, 11));
    r1!(c, d, a, b, g, h, e, f, T[14], x[14], expand!(x, 2, 9, 15, 5, 12));
    r1!(b, c, d, a, f, g, h, e, T[15], x[15], expand!(x, 3, 10, 0, 6, 13));
    r2!(a, b, c, d, e, f, g, h, T[16], x[0], expand!(x, 4, 11, 1, 7, 14));
    r2!(d, a, b, c, h, e, f, g, T[17], x[1], expand!(x, 5, 12, 2, 8, 15));
    r2!(c, d, a, b, g, h, e, f, T[18], x[2], expand!(x, 6, 13, 3, 9, 0));
    r2!(b, c, d, a, f, g, h, e, T[19], x[3], expand!(x, 7, 14, 4, 10, 1));
    r2!(a, b, c, d, e, f, g, h, T[20], x[4], expand!(x, 8, 15, 5, 11, 2));
    r2!(d, a, b, c, h, e, f, g, T[21], x[5], expand!(x, 9, 0, 6, 12, 3));
    r2!(c, d, a, b, g, h, e, f, T[22], x[6], expand!(x, 10, 1, 7, 13, 4));
    r2!(b, c, d, a, f, g, h, e, T[23], x[7], expand!(x, 11, 2, 8, 14, 5));
    r2!(a, b, c, d, e, f, g, h, T[24], x[8], expand!(x, 12, 3, 9, 15, 6));
    r2!(d, a, b, c, h, e, f, g, T[25], x[9], expand!(x, 13, 4, 10, 0, 7));
    r2!(c, d, a, b, g, h, e, f, T[26], x[10], expand!(x, 14, 5, 11, 1, 8));
    r2!(b, c, d, a, f, g, h, e, T[27], x[11], expand!(x, 15, 6, 12, 2, 9));
    r2!(a, b, c, d, e, f, g, h, T[28], x[12], expand!(x, 0, 7, 13, 3, 10));
    r2!(d, a, b, c, h, e, f, g, T[29], x[13], expand!(x, 1, 8, 14, 4, 11));
    r2!(c, d, a, b, g, h, e, f, T[30], x[14], expand!(x, 2, 9, 15, 5, 12));
    r2!(b, c, d, a, f, g, h, e, T[31], x[15], expand!(x, 3, 10, 0, 6, 13));
    r2!(a, b, c, d, e, f, g, h, T[32], x[0], expand!(x, 4, 11, 1, 7, 14));
    r2!(d, a, b, c, h, e, f, g, T[33], x[1], expand!(x, 5, 12, 2, 8, 15));
    r2!(c, d, a, b, g, h, e, f, T[34], x[2], expand!(x, 6, 13, 3, 9, 0));
    r2!(b, c, d, a, f, g, h, e, T[35], x[3], expand!(x, 7, 14, 4, 10, 1));
    r2!(a, b, c, d, e, f, g, h, T[36], x[4], expand!(x, 8, 15, 5, 11, 2));
    r2!(d, a, b, c, h, e, f, g, T[37], x[5], expand!(x, 9, 0, 6, 12, 3));
    r2!(c, d, a, b, g, h, e, f, T[38], x[6], expand!(x, 10, 1, 7, 13, 4));
    r2!(b, c, d, a, f, g, h, e, T[39], x[7], expand!(x, 11, 2, 8, 14, 5));
    r2!(a, b, c, d, e, f, g, h, T[40], x[8], expand!(x, 12, 3, 9, 15, 6));
    r2!(d, a, b, c, h, e, f, g, T[41], x[9], expand!(x, 13, 4, 10, 0, 7));
    r2!(c, d, a, b, g, h, e, f, T[42], x[10], expand!(x, 14, 5, 11, 1, 8));
    r2!(b, c, d, a, f, g, h, e, T[43], x[11], expand!(x, 15, 6, 12, 2, 9));
    r2!(a, b, c, d, e, f, g, h, T[44], x[12], expand!(x, 0, 7, 13, 3, 10));
    r2!(d, a, b, c, h, e, f, g, T[45], x[13], expand!(x, 1, 8, 14, 4, 11));
    r2!(c, d, a, b, g, h, e, f, T[46], x[14], expand!(x, 2, 9, 15, 5, 12));
    r2!(b, c, d, a, f, g, h, e, T[47], x[15], expand!(x, 3, 10, 0, 6, 13));
    r2!(a, b, c, d, e, f, g, h, T[48], x[0], expand!(x, 4, 11, 1, 7, 14));
    r2!(d, a, b, c, h, e, f, g, T[49], x[1], expand!(x, 5, 12, 2, 8, 15));
    r2!(c, d, a, b, g, h, e, f, T[50], x[2], expand!(x, 6, 13, 3, 9, 0));
    r2!(b, c, d, a, f, g, h, e, T[51], x[3], expand!(x, 7, 14, 4, 10, 1));
    r2!(a, b, c, d, e, f, g, h, T[52], x[4], expand!(x, 8, 15, 5, 11, 2));
    r2!(d, a, b, c, h, e, f, g, T[53], x[5], expand!(x, 9, 0, 6, 12, 3));
    r2!(c, d, a, b, g, h, e, f, T[54], x[6], expand!(x, 10, 1, 7, 13, 4));
    r2!(b, c, d, a, f, g, h, e, T[55], x[7], expand!(x, 11, 2, 8, 14, 5));
    r2!(a, b, c, d, e, f, g, h, T[56], x[8], expand!(x, 12, 3, 9, 15, 6));
    r2!(d, a, b, c, h, e, f, g, T[57], x[9], expand!(x, 13, 4, 10, 0, 7));
    r2!(c, d, a, b, g, h, e, f, T[58], x[10], expand!(x, 14, 5, 11, 1, 8));
    r2!(b, c, d, a, f, g, h, e, T[59], x[11], expand!(x, 15, 6, 12, 2, 9));
    r2!(a, b, c, d, e, f, g, h, T[60], x[12], expand!(x, 0, 7, 13, 3, 10));
    r2!(d, a, b, c, h, e, f, g, T[61], x[13], expand_last!(x, 1, 8, 14, 4, 11));
    r2!(c, d, a, b, g, h, e, f, T[62], x[14], expand_last!(x, 2, 9, 15, 5, 12));
    r2!(b, c, d, a, f, g, h, e, T[63], x[15], expand_last!(x, 3, 10, 0, 6, 13));
    let out = [a, b, c, d, e, f, g, h];
    for (s, v) in state.iter_mut().zip(out) {
        *s ^= v;
    }
}

/// The 16 big-endian words of a block.
#[inline(always)]
fn words(block: &[u8; 64]) -> [u32; 16] {
    let mut w = [0u32; 16];
    for (o, c) in w.iter_mut().zip(block.as_chunks::<4>().0) {
        *o = u32::from_be_bytes(*c);
    }
    w
}

/// Compresses whole blocks into one state.
pub(crate) fn compress_blocks(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    for b in blocks {
        compress(state, words(b));
    }
}

/// The final block(s): `tail` (< 64 bytes) ‖ 0x80 ‖ 0… ‖ bit length (64-bit BE).
/// Returns the buffer and how many of its 64-byte blocks are used (1 or 2).
fn pad(tail: &[u8], total_len: u64) -> ([u8; 128], usize) {
    let mut buf = [0u8; 128];
    let n = tail.len().min(63);
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), tail.get(..n)) {
        dst.copy_from_slice(src);
    }
    if let Some(b) = buf.get_mut(n) {
        *b = 0x80;
    }
    let used = if n < 56 { 64 } else { 128 };
    if let Some(dst) = buf.get_mut(used - 8..used) {
        dst.copy_from_slice(&total_len.wrapping_mul(8).to_be_bytes());
    }
    (buf, used / 64)
}

fn to_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.as_chunks_mut::<4>().0.iter_mut().zip(state) {
        *o = w.to_be_bytes();
    }
    out
}

/// Streaming SM3 over one message. Its buffer and chaining value are wiped
/// on drop (it also runs the keyed HMAC states).
#[derive(Clone)]
pub(crate) struct Sm3State {
    h: [u32; 8],
    buf: [u8; 64],
    buffered: usize,
    /// Bytes fed so far, including any prefix already folded into `h`.
    len: u64,
}

impl Default for Sm3State {
    fn default() -> Self {
        Self::resume(IV, 0)
    }
}

impl Drop for Sm3State {
    fn drop(&mut self) {
        self.h.zeroize();
        self.buf.zeroize();
    }
}

impl Sm3State {
    /// Continues from chaining value `h` after `len` bytes (a multiple of 64).
    pub(crate) fn resume(h: [u32; 8], len: u64) -> Self {
        Sm3State { h, buf: [0; 64], buffered: 0, len }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(data.len());
            let (head, rest) = data.split_at(take);
            if let Some(dst) = self.buf.get_mut(self.buffered..self.buffered + take) {
                dst.copy_from_slice(head);
            }
            self.buffered += take;
            data = rest;
            if self.buffered < 64 {
                return;
            }
            compress(&mut self.h, words(&self.buf));
            self.buffered = 0;
        }
        let (blocks, rest) = data.as_chunks::<64>();
        compress_blocks(&mut self.h, blocks);
        if let Some(dst) = self.buf.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.buffered = rest.len();
    }

    pub(crate) fn finalize(mut self) -> [u8; 32] {
        let (mut last, used) = pad(self.buf.get(..self.buffered).unwrap_or_default(), self.len);
        let (blocks, _) = last.as_chunks::<64>();
        compress_blocks(&mut self.h, blocks.get(..used).unwrap_or_default());
        last.zeroize();
        to_bytes(&self.h)
    }
}
