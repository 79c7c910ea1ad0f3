//! Adaptive context-model arithmetic coder for 4-bit packed DNA bases (the `seq` stream of the
//! archive profile).
//!
//! The input is BAM's packed sequence encoding (`=ACMGRSVTWYHKDBN` = nibbles 0..15, first base
//! in the high nibble) of many coordinate-sorted, overlapping reads concatenated. Each nibble is
//! coded as binary decisions with a binary arithmetic coder:
//!
//! 1. "is the nibble one of A, C, G, T (1, 2, 4, 8)?", context: which half of the byte plus the
//!    two previous nibbles;
//! 2. if yes, the 2-bit base (A=0, C=1, G=2, T=3) as two decisions, each predicted by two
//!    hashed context models over the history of previous ACGT bases (order [`ORDER_LO`] and
//!    [`ORDER_HI`]) whose predictions are combined by a small logistic mixer;
//! 3. if not, the nibble's four bits through an order-0 binary tree.
//!
//! Overlapping reads make the order-`ORDER_HI` context almost deterministic once a region has
//! been seen, which is where the gain over a general-purpose compressor comes from.
//!
//! Everything is integer arithmetic, so encoder and decoder agree on every machine. The model
//! is reset on every call: each block decodes on its own.
//!
//! # Format (everything an independent decoder needs)
//!
//! *Coder.* 32-bit binary arithmetic coder, bounds `x1 = 0`, `x2 = 0xFFFF_FFFF`. A decision
//! with 12-bit probability `p` (of the bit being 1, 1..=4095) splits at
//! `xmid = x1 + (x2 - x1 >> 12) * p + (((x2 - x1) & 0xFFF) * p >> 12)`; bit 1 keeps
//! `x2 = xmid`, bit 0 keeps `x1 = xmid + 1`. While the top bytes of `x1` and `x2` agree the
//! encoder emits that byte and shifts (`x1 <<= 8`, `x2 = x2 << 8 | 0xFF`). At the end it emits
//! the top byte of `x1` only. The decoder starts with `x` = the first 4 bytes big-endian, shifts
//! in the next byte whenever it shifts, and reads bytes past the end as `0xFF`; an empty input
//! (`raw_len == 0`) codes to zero bytes.
//!
//! *Flag model.* 512 16-bit probabilities, initially 32768, indexed by
//! `half << 8 | prev1 << 4 | prev2` (`half` = 1 for a low nibble, `prev1`/`prev2` the previous
//! two nibbles of the stream, initially 0). Coded with `p = clamp(p16 >> 4, 1, 4095)`, updated
//! `p16 += ((bit ? 65535 : 0) - p16) >> 4`. Escape tree: 16 such probabilities, node `1`, then
//! `node = 2 * node + bit`, the nibble's bits from the most significant.
//!
//! *Base models.* `h` = the previous ACGT bases, 2 bits each, newest in the low bits (u64,
//! initially 0, updated only after ACGT nibbles). Table size `S = 2^s` 32-bit slots each,
//! `s = clamp(ceil_log2(raw_len) + TABLE_EXTRA_BITS, TABLE_MIN_BITS, TABLE_MAX_BITS)`. For model
//! `j` with order `k`: `c = h & (4^k - 1)`, `base = ((c + 1) * 0x9E37_79B9_7F4A_7C15 wrapping
//! (mod 2^64)) >> (66 - s) << 2` (for the second model the multiplier is
//! `0xD6E8_FEB8_6659_FD93`); the first decision (high bit of the base) uses slot `base + 1`,
//! the second `base + 2 + first_bit`. A slot holds `p16 << 16 | n`, initially `32768 << 16`;
//! its prediction is `st_j = stretch(p16 >> 4)`; after the bit it is updated
//! `p16 += ((bit ? 65535 : 0) - p16) * RECIP[n] >> 16` (arithmetic shift), `n = min(n + 1,
//! LIMIT_j)`, with `RECIP[n] = 65536 * 2 / (2n + 3)` (integer division), see [`counter_rate`].
//!
//! *Mixer.* Weight set `w[node][n_hi]` (node 0 for the first decision, 1/2 for the second
//! after bit 0/1; `n_hi` the count of the order-`ORDER_HI` slot), three i32 weights each,
//! initially `W0_LO, W0_HI, 0`. `dot = (w0 * st_0 + w1 * st_1 + w2 * 256) >> 16`,
//! `p = clamp(squash(dot), 1, 4095)`. After the bit: `err = ((bit << 12) - p) * MIX_RATE`,
//! `w_i = clamp(w_i + ((x_i * err) >> 10), -2^22, 2^22)` (the dot product in 64 bits, clamped to ±4096 before `squash`) where `x = [st_0, st_1, 256]`.
//!
//! `squash(d)` = 4095 if d > 2047, 1 if d < -2047, else linear interpolation in
//! [`SQUASH_T`]: `i = (d >> 7) + 16`, `f = d & 127`, `(T[i] * (128 - f) + T[i + 1] * f + 64) >> 7`.
//! `stretch(p)` for `p` in 0..4096 is the smallest `d` in -2047..=2047 with `squash(d) >= p`
//! (2047 if none).

pub use super::rans::DecodeError;

/// Order (in bases) of the low-order context model.
const ORDER_LO: u32 = 8;
/// Order (in bases) of the high-order context model.
const ORDER_HI: u32 = 12;
/// Adaptation limits of the counters (the rate settles at `1 / (LIMIT + 1.5)`).
const LIMIT_LO: u32 = 15;
const LIMIT_HI: u32 = 15;
/// Table slots: `2^(ceil_log2(raw_len) + TABLE_EXTRA_BITS)`, clamped.
const TABLE_EXTRA_BITS: u32 = 2;
const TABLE_MIN_BITS: u32 = 12;
/// 2^21 slots * 4 bytes * 2 tables = 16 MiB at most.
const TABLE_MAX_BITS: u32 = 21;
/// Mixer weights stay within ±2^22 (64.0 in 16.16 fixed point).
const WEIGHT_LIMIT: i32 = 1 << 22;

/// Initial mixer weights (16.16 fixed point) and learning rate.
const W0_LO: i32 = 1 << 15;
const W0_HI: i32 = 1 << 15;
const MIX_RATE: i32 = 6;

const HASH_LO: u64 = 0x9E37_79B9_7F4A_7C15;
const HASH_HI: u64 = 0xD6E8_FEB8_6659_FD93;

/// `4096 / (1 + e^-x)` at x = -8, -7.5, ..., 8 (rounded); the logistic function in 12 bits.
const SQUASH_T: [i32; 33] = [
    1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994, 3348,
    3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094,
];

/// Logistic function: stretch domain (8 fractional bits, ±2047) to a 12-bit probability.
#[inline]
fn squash(d: i32) -> i32 {
    if d > 2047 {
        return 4095;
    }
    if d < -2047 {
        return 1;
    }
    let i = ((d >> 7) + 16) as usize;
    let f = d & 127;
    ((SQUASH_T[i] * (128 - f) + SQUASH_T[i + 1] * f + 64) >> 7).clamp(1, 4095)
}

/// The inverse of [`squash`], tabulated so both sides compute it identically.
fn stretch_table() -> Box<[i16; 4096]> {
    let mut t = Box::new([2047i16; 4096]);
    let mut next = 0usize;
    for d in -2047..=2047 {
        let v = squash(d) as usize;
        while next <= v {
            t[next] = d as i16;
            next += 1;
        }
    }
    t
}

/// Adaptation rate of a counter that has seen `n` bits, as a 16-bit fraction: `1 / (n + 1.5)`.
/// A fresh context learns fast (the first bit moves it 2/3 of the way), a well-visited one
/// averages more history.
const fn counter_rate(n: u32) -> i32 {
    (65536 * 2 / (2 * n + 3)) as i32
}

const RECIP: [i32; 16] = {
    let mut t = [0i32; 16];
    let mut n = 0;
    while n < 16 {
        t[n] = counter_rate(n as u32);
        n += 1;
    }
    t
};

/// One side of the binary arithmetic coder. The encoder codes `bit` and returns it; the
/// decoder ignores `bit` and returns the decoded one, so one model routine serves both.
trait BitCoder {
    fn code(&mut self, p12: u32, bit: u32) -> u32;
}

/// Splits the interval `[x1, x2]` in proportion to `p12 / 4096` without overflowing 32 bits.
#[inline]
fn split(x1: u32, x2: u32, p12: u32) -> u32 {
    let r = x2 - x1;
    x1 + (r >> 12) * p12 + (((r & 0xFFF) * p12) >> 12)
}

struct Encoder<'a> {
    x1: u32,
    x2: u32,
    out: &'a mut Vec<u8>,
}

impl BitCoder for Encoder<'_> {
    #[inline]
    fn code(&mut self, p12: u32, bit: u32) -> u32 {
        let xmid = split(self.x1, self.x2, p12);
        if bit != 0 {
            self.x2 = xmid;
        } else {
            self.x1 = xmid + 1;
        }
        // Once the top byte is settled it can never change (no carries in this coder).
        while (self.x1 ^ self.x2) & 0xFF00_0000 == 0 {
            self.out.push((self.x2 >> 24) as u8);
            self.x1 <<= 8;
            self.x2 = (self.x2 << 8) | 0xFF;
        }
        bit
    }
}

impl Encoder<'_> {
    /// One byte suffices: the decoder pads with 0xFF, and `top(x1) . FF FF FF` lies in
    /// `[x1, x2]` because the top bytes of `x1` and `x2` differ.
    fn flush(self) {
        self.out.push((self.x1 >> 24) as u8);
    }
}

struct Decoder<'a> {
    x1: u32,
    x2: u32,
    x: u32,
    src: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    #[inline]
    fn next_byte(&mut self) -> u32 {
        let b = self.src.get(self.pos).copied().unwrap_or(0xFF);
        self.pos += 1;
        b as u32
    }

    /// Bytes read beyond the end of `src`. A valid stream needs at most 3 (the decoder reads
    /// 4 bytes ahead, the encoder flushed 1).
    fn overrun(&self) -> usize {
        self.pos.saturating_sub(self.src.len())
    }
}

impl BitCoder for Decoder<'_> {
    #[inline]
    fn code(&mut self, p12: u32, _bit: u32) -> u32 {
        let xmid = split(self.x1, self.x2, p12);
        let bit = if self.x <= xmid {
            self.x2 = xmid;
            1
        } else {
            self.x1 = xmid + 1;
            0
        };
        while (self.x1 ^ self.x2) & 0xFF00_0000 == 0 {
            self.x1 <<= 8;
            self.x2 = (self.x2 << 8) | 0xFF;
            self.x = (self.x << 8) | self.next_byte();
        }
        bit
    }
}

/// Shift-updated 16-bit probability for the small models.
#[inline]
fn code_simple<C: BitCoder>(c: &mut C, p: &mut u16, bit: u32) -> u32 {
    let p12 = ((*p >> 4) as u32).clamp(1, 4095);
    let bit = c.code(p12, bit);
    let target = if bit != 0 { 65535i32 } else { 0 };
    let v = *p as i32;
    *p = (v + ((target - v) >> 4)) as u16;
    bit
}

/// The whole model state of one call.
struct Model {
    t_lo: Vec<u32>,
    t_hi: Vec<u32>,
    shift: u32,
    stretch: Box<[i16; 4096]>,
    weights: [[[i32; 3]; 16]; 3],
    flag: [u16; 512],
    esc: [u16; 16],
    hist: u64,
    prev1: u32,
    prev2: u32,
}

const SLOT_INIT: u32 = 32768 << 16;

impl Model {
    fn new(raw_len: usize) -> Model {
        let lg = usize::BITS - raw_len.max(1).saturating_sub(1).leading_zeros();
        let bits = (lg + TABLE_EXTRA_BITS).clamp(TABLE_MIN_BITS, TABLE_MAX_BITS);
        Model {
            t_lo: vec![SLOT_INIT; 1 << bits],
            t_hi: vec![SLOT_INIT; 1 << bits],
            // The hash keeps `bits - 2` bits (a group of 4 slots per context).
            shift: 64 - (bits - 2),
            stretch: stretch_table(),
            weights: [[[W0_LO, W0_HI, 0]; 16]; 3],
            flag: [32768; 512],
            esc: [32768; 16],
            hist: 0,
            prev1: 0,
            prev2: 0,
        }
    }

    /// One base decision through both context models and the mixer.
    #[inline]
    fn code_base_bit<C: BitCoder>(
        &mut self,
        c: &mut C,
        i_lo: usize,
        i_hi: usize,
        node: usize,
        bit: u32,
    ) -> u32 {
        let s_lo = self.t_lo[i_lo];
        let s_hi = self.t_hi[i_hi];
        let st0 = self.stretch[(s_lo >> 20) as usize] as i32;
        let st1 = self.stretch[(s_hi >> 20) as usize] as i32;
        let n_hi = (s_hi & 0xF) as usize;
        let w = &mut self.weights[node][n_hi];
        // i64 and clamped weights: adversarial input must not overflow (a panic in debug
        // builds, a platform-dependent result nowhere).
        let dot = (w[0] as i64 * st0 as i64 + w[1] as i64 * st1 as i64 + w[2] as i64 * 256) >> 16;
        let p = squash(dot.clamp(-4096, 4096) as i32);
        let bit = c.code(p as u32, bit);
        let err = ((bit as i32) << 12) - p;
        let err = err * MIX_RATE;
        w[0] = (w[0] + ((st0 * err) >> 10)).clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT);
        w[1] = (w[1] + ((st1 * err) >> 10)).clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT);
        w[2] = (w[2] + ((256 * err) >> 10)).clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT);
        self.t_lo[i_lo] = update_slot(s_lo, bit, LIMIT_LO);
        self.t_hi[i_hi] = update_slot(s_hi, bit, LIMIT_HI);
        bit
    }

    /// Codes one nibble (the encoder passes it; the decoder passes 0) and returns it.
    #[inline]
    fn code_nibble<C: BitCoder>(&mut self, c: &mut C, half: u32, nib: u32) -> u32 {
        let fctx = ((half << 8) | (self.prev1 << 4) | self.prev2) as usize;
        let is_base = matches!(nib, 1 | 2 | 4 | 8) as u32;
        let is_base = code_simple(c, &mut self.flag[fctx], is_base);
        let nib = if is_base != 0 {
            let want = nib.trailing_zeros() & 3;
            let m_lo = (1u64 << (2 * ORDER_LO)) - 1;
            let m_hi = (1u64 << (2 * ORDER_HI)) - 1;
            let c_lo = (self.hist & m_lo) + 1;
            let c_hi = (self.hist & m_hi) + 1;
            let g_lo = ((c_lo.wrapping_mul(HASH_LO) >> self.shift) << 2) as usize;
            let g_hi = ((c_hi.wrapping_mul(HASH_HI) >> self.shift) << 2) as usize;
            let b1 = self.code_base_bit(c, g_lo + 1, g_hi + 1, 0, want >> 1);
            let n2 = 2 + b1 as usize;
            let b0 = self.code_base_bit(c, g_lo + n2, g_hi + n2, 1 + b1 as usize, want & 1);
            let base = (b1 << 1) | b0;
            self.hist = (self.hist << 2) | base as u64;
            1 << base
        } else {
            let mut node = 1usize;
            for i in (0..4).rev() {
                let b = code_simple(c, &mut self.esc[node], (nib >> i) & 1);
                node = 2 * node + b as usize;
            }
            (node & 15) as u32
        };
        self.prev2 = self.prev1;
        self.prev1 = nib;
        nib
    }
}

#[inline]
fn update_slot(s: u32, bit: u32, limit: u32) -> u32 {
    let p = (s >> 16) as i32;
    let n = s & 0xFFFF;
    let target = if bit != 0 { 65535 } else { 0 };
    let p = p + (((target - p) * RECIP[n as usize]) >> 16);
    ((p as u32) << 16) | (n + 1).min(limit)
}

/// Appends the arithmetic-coded form of `packed` (4-bit packed bases, any byte values) to
/// `out`. The length is not stored: [`decode`] must be told it.
///
/// ```
/// use bams3_core::codec::bases;
/// let packed = [0x12, 0x48, 0x12, 0x48, 0xF0];
/// let mut coded = Vec::new();
/// bases::encode(&packed, &mut coded);
/// assert_eq!(bases::decode(&coded, packed.len()).unwrap(), packed);
/// ```
pub fn encode(packed: &[u8], out: &mut Vec<u8>) {
    if packed.is_empty() {
        return;
    }
    let mut m = Model::new(packed.len());
    let mut c = Encoder {
        x1: 0,
        x2: u32::MAX,
        out,
    };
    for &b in packed {
        m.code_nibble(&mut c, 0, (b >> 4) as u32);
        m.code_nibble(&mut c, 1, (b & 15) as u32);
    }
    c.flush();
}

/// Decodes exactly `raw_len` bytes from `src` (the output of [`encode`]).
///
/// Corrupt input gives either an error (when the coder runs off the end of `src`) or
/// `raw_len` bytes of garbage; it never panics and allocates at most `raw_len` bytes plus the
/// model tables.
pub fn decode(src: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    if raw_len == 0 {
        return Ok(Vec::new());
    }
    if src.is_empty() {
        return Err(DecodeError("bases: empty input"));
    }
    let mut m = Model::new(raw_len);
    let mut c = Decoder {
        x1: 0,
        x2: u32::MAX,
        x: 0,
        src,
        pos: 0,
    };
    for _ in 0..4 {
        c.x = (c.x << 8) | c.next_byte();
    }
    // Every decision narrows the interval by at least 1/4096, so bytes are consumed at a
    // bounded pace and a garbage `raw_len` ends in the overrun check, not in a huge loop.
    let mut out = Vec::with_capacity(raw_len.min(src.len().saturating_mul(64)));
    for _ in 0..raw_len {
        let hi = m.code_nibble(&mut c, 0, 0);
        let lo = m.code_nibble(&mut c, 1, 0);
        out.push(((hi << 4) | lo) as u8);
        if c.overrun() > 3 {
            return Err(DecodeError("bases: coded stream truncated"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn round_trip(data: &[u8]) -> usize {
        let mut coded = Vec::new();
        encode(data, &mut coded);
        assert_eq!(decode(&coded, data.len()).unwrap(), data);
        coded.len()
    }

    fn pack(bases: &[u8]) -> Vec<u8> {
        let code = |b: u8| match b {
            b'A' => 1u8,
            b'C' => 2,
            b'G' => 4,
            b'T' => 8,
            _ => 15,
        };
        bases
            .chunks(2)
            .map(|p| (code(p[0]) << 4) | p.get(1).map_or(0, |&b| code(b)))
            .collect()
    }

    #[test]
    fn empty_and_one_byte() {
        assert_eq!(round_trip(&[]), 0);
        assert_eq!(decode(&[], 0).unwrap(), Vec::<u8>::new());
        for b in [0u8, 0x12, 0xFF, 0x80] {
            round_trip(&[b]);
        }
    }

    #[test]
    fn every_nibble_value() {
        let all: Vec<u8> = (0..=255u8).collect();
        round_trip(&all);
        let rev: Vec<u8> = (0..=255u8).rev().cycle().take(5000).collect();
        round_trip(&rev);
    }

    #[test]
    fn odd_length_padding() {
        let mut data = Vec::new();
        for len in [1usize, 3, 5, 149, 151, 7, 1, 1] {
            let read: Vec<u8> = (0..len).map(|i| b"ACGTN"[(i * 7 + len) % 5]).collect();
            data.extend(pack(&read));
        }
        round_trip(&data);
    }

    #[test]
    fn long_run() {
        let n = round_trip(&[0x11; 100_000]);
        assert!(n < 200, "{n}");
    }

    #[test]
    fn random_bytes() {
        let mut r = XorShift(0x1234_5678_9abc_def1);
        let data: Vec<u8> = (0..200_000).map(|_| r.next() as u8).collect();
        let n = round_trip(&data);
        assert!(n < data.len() * 11 / 10, "{n}");
    }

    fn synthetic_reads() -> Vec<u8> {
        let mut r = XorShift(42);
        let genome: Vec<u8> = (0..50_000)
            .map(|_| b"ACGT"[(r.next() % 4) as usize])
            .collect();
        let mut starts: Vec<usize> = (0..256)
            .map(|_| (r.next() % (50_000 - 150) as u64) as usize)
            .collect();
        starts.sort();
        let mut packed = Vec::new();
        for s in starts {
            packed.extend(pack(&genome[s..s + 150]));
        }
        packed
    }

    #[test]
    fn synthetic_genome_compresses() {
        let packed = synthetic_reads();
        let n = round_trip(&packed);
        let bits_per_base = (n * 8) as f64 / (packed.len() * 2) as f64;
        // 256 reads over 50 kb is under 1x: most bases are novel (2 bits), so the bound is
        // checked on a denser sampling below.
        assert!(bits_per_base < 2.1, "{bits_per_base}");
    }

    #[test]
    fn synthetic_overlapping_reads_below_half_bit() {
        // 256 reads of 150 bp from a 3.8 kb region (~10x coverage), as in one real block.
        let mut r = XorShift(7);
        let genome: Vec<u8> = (0..50_000)
            .map(|_| b"ACGT"[(r.next() % 4) as usize])
            .collect();
        let mut starts: Vec<usize> = (0..256).map(|_| (r.next() % 3_700) as usize).collect();
        starts.sort();
        let mut packed = Vec::new();
        for s in starts {
            packed.extend(pack(&genome[s..s + 150]));
        }
        let n = round_trip(&packed);
        let bits_per_base = (n * 8) as f64 / (packed.len() * 2) as f64;
        assert!(bits_per_base < 0.5, "{bits_per_base}");
    }

    #[test]
    fn corrupt_inputs_do_not_panic() {
        let packed = synthetic_reads();
        let mut coded = Vec::new();
        encode(&packed, &mut coded);
        for cut in [0, 1, 2, 5, coded.len() / 2, coded.len() - 1] {
            if let Ok(v) = decode(&coded[..cut], packed.len()) {
                assert_eq!(v.len(), packed.len());
            }
        }
        let mut r = XorShift(99);
        for len in [1usize, 4, 100, 5000] {
            let junk: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            for raw in [1usize, 10, 10_000] {
                if let Ok(v) = decode(&junk, raw) {
                    assert_eq!(v.len(), raw);
                }
            }
        }
        // A length far beyond what the input could hold ends in an error, quickly.
        assert!(decode(&coded, 1 << 40).is_err());
        assert!(decode(&[0u8; 16], usize::MAX).is_err());
    }
}
