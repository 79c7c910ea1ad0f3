//! Static order-1 rANS: an entropy coder for byte streams whose next symbol depends mostly on
//! the previous one, which is what base qualities look like.
//!
//! Measured on simulated Illumina qualities, zstd level 3 reaches 2.4 bits per quality while
//! the order-1 entropy is 1.8; this coder gets within a few percent of that entropy at a
//! speed comparable to zstd's. The byte layout is in `docs/FORMAT.md`.
//!
//! Layout: LEB128 count of contexts, then per context `u8 context`, LEB128 count of symbols,
//! and per symbol `u8 symbol`, LEB128 frequency (frequencies of a context sum to 4096); then
//! the LEB128 byte lengths of lanes 0-2; then each lane: its 4-byte little-endian initial
//! decoder state and its renormalisation bytes. The data is cut into four contiguous lanes
//! (quarters, the last taking the remainder) coded independently.

use super::varint;

const PROB_BITS: u32 = 12;
const TOTAL: u32 = 1 << PROB_BITS;
const RANS_L: u32 = 1 << 23;

/// Why a stream could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

/// Scales `counts` to frequencies summing to [`TOTAL`], keeping every seen symbol at least 1.
pub(crate) fn normalise(counts: &[u32; 256]) -> [u32; 256] {
    let total: u64 = counts.iter().map(|&c| c as u64).sum();
    let mut freq = [0u32; 256];
    if total == 0 {
        return freq;
    }
    let mut sum = 0u32;
    let mut largest = 0;
    for s in 0..256 {
        if counts[s] == 0 {
            continue;
        }
        let f = ((counts[s] as u64 * TOTAL as u64) / total).max(1) as u32;
        freq[s] = f;
        sum += f;
        if counts[s] > counts[largest] {
            largest = s;
        }
    }
    // Put the rounding error on the most frequent symbol, taking from others if it would
    // drop below 1 (possible only with many rare symbols).
    if sum <= TOTAL || freq[largest] > sum - TOTAL {
        freq[largest] = freq[largest] + TOTAL - sum;
    } else {
        let mut excess = sum - TOTAL;
        for f in freq.iter_mut() {
            while *f > 1 && excess > 0 {
                *f -= 1;
                excess -= 1;
            }
        }
    }
    freq
}

/// Number of independent lanes: the stream is cut into this many contiguous pieces, each coded
/// with its own state, so the decoder can advance four dependency chains at once.
const LANES: usize = 4;

/// Lane `i` of `len` bytes: quarters, the last taking the remainder.
fn lane_range(len: usize, i: usize) -> std::ops::Range<usize> {
    let q = len / LANES;
    let end = if i == LANES - 1 { len } else { (i + 1) * q };
    i * q..end
}

/// Order-1 transition counts (`counts[prev][symbol]`), the input of a frequency table.
///
/// Counting several pieces into one `Counts` gives one table shared by all of them: that is
/// how a blocked stream (`docs/FORMAT.md`, codec 3) codes each record block on its own without
/// paying for a table per block.
pub struct Counts(Vec<[u32; 256]>);

impl Default for Counts {
    fn default() -> Self {
        Counts(vec![[0u32; 256]; 256])
    }
}

impl Counts {
    /// Adds the transitions of `data` as [`encode_with`] will code them (lane by lane, each
    /// lane starting from context 0).
    pub fn add(&mut self, data: &[u8]) {
        for lane in 0..LANES {
            let mut prev = 0u8;
            for &b in &data[lane_range(data.len(), lane)] {
                self.0[prev as usize][b as usize] += 1;
                prev = b;
            }
        }
    }
}

/// How the encoder codes one symbol in one context: the division by the symbol's frequency
/// done as a multiplication by its reciprocal (exact for the states rANS reaches, below
/// 2^31: F. Giesen's `rans_byte.h`), which is what the encoder's time went into.
#[derive(Debug, Clone, Copy, Default)]
struct EncSymbol {
    /// Reciprocal of the frequency, scaled by 2^(32 + shift).
    rcp: u32,
    /// Start of the symbol's slots (for frequency 1, corrected for the reciprocal's error).
    bias: u32,
    /// `TOTAL - freq`.
    cmpl: u32,
    shift: u32,
}

impl EncSymbol {
    fn new(start: u32, freq: u32) -> EncSymbol {
        let cmpl = TOTAL - freq;
        if freq < 2 {
            // rcp = 2^32 - 1 gives q = x - 1; the bias puts back what that loses.
            return EncSymbol {
                rcp: u32::MAX,
                bias: start + TOTAL - 1,
                cmpl,
                shift: 0,
            };
        }
        let shift = 32 - (freq - 1).leading_zeros(); // ceil(log2 freq)
        let rcp = (1u64 << (shift + 31)).div_ceil(u64::from(freq));
        EncSymbol {
            rcp: rcp as u32,
            bias: start,
            cmpl,
            shift: shift - 1,
        }
    }

    /// Renormalises `x` into `out` backwards from `*at` (at most two bytes: `x < 2^31` and
    /// `x_max >= 2^19`), then codes the symbol: `(x / freq) * TOTAL + x % freq + start`.
    #[inline(always)]
    fn put(&self, mut x: u32, out: &mut [u8], at: &mut usize) -> u32 {
        let x_max = (TOTAL - self.cmpl) << (23 - PROB_BITS + 8);
        while x >= x_max {
            *at -= 1;
            out[*at] = x as u8;
            x >>= 8;
        }
        let q = ((u64::from(x) * u64::from(self.rcp)) >> 32) as u32 >> self.shift;
        x + self.bias + q * self.cmpl
    }
}

/// Encoder tables: per context, how each symbol is coded.
pub struct EncodeTable {
    syms: Vec<[EncSymbol; 256]>,
}

impl EncodeTable {
    /// Normalises `counts` into a table, appending its serialised form (the table part of
    /// codec 2's layout) to `out`.
    pub fn build(counts: &Counts, out: &mut Vec<u8>) -> EncodeTable {
        let counts = &counts.0;
        let contexts: Vec<usize> = (0..256)
            .filter(|&c| counts[c].iter().any(|&n| n > 0))
            .collect();
        varint::put(out, contexts.len() as u64);
        let mut syms = vec![[EncSymbol::default(); 256]; 256];
        for &c in &contexts {
            let f = normalise(&counts[c]);
            out.push(c as u8);
            let n = f.iter().filter(|&&x| x > 0).count();
            varint::put(out, n as u64);
            let mut cum = 0;
            for s in 0..256 {
                if f[s] > 0 {
                    out.push(s as u8);
                    varint::put(out, f[s] as u64);
                    syms[c][s] = EncSymbol::new(cum, f[s]);
                    cum += f[s];
                }
            }
        }
        EncodeTable { syms }
    }
}

/// Compresses `data` with an order-1 model (context = previous byte of the same lane, 0 at a
/// lane's start).
///
/// ```
/// use bams3_core::codec::rans;
/// let data = b"IIIIIIIIIII#####IIIIIIII?????IIII".repeat(100);
/// let packed = rans::encode(&data);
/// assert!(packed.len() < data.len() / 3);
/// assert_eq!(rans::decode(&packed, data.len()).unwrap(), data);
/// ```
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut counts = Counts::default();
    counts.add(data);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let table = EncodeTable::build(&counts, &mut out);
    encode_with(&table, data, &mut out);
    out
}

/// Appends the lanes of `data` coded with `table` (which must have been built from counts
/// that include `data`): the lane part of codec 2's layout.
///
/// ```
/// use bams3_core::codec::rans;
/// let (a, b) = (b"IIII#III".repeat(50), b"##IIIII?".repeat(40));
/// let mut counts = rans::Counts::default();
/// counts.add(&a);
/// counts.add(&b);
/// let mut table_bytes = Vec::new();
/// let table = rans::EncodeTable::build(&counts, &mut table_bytes);
/// let (mut pa, mut pb) = (Vec::new(), Vec::new());
/// rans::encode_with(&table, &a, &mut pa);
/// rans::encode_with(&table, &b, &mut pb);
/// let (dt, _) = rans::DecodeTable::parse(&table_bytes).unwrap();
/// assert_eq!(dt.decode(&pb, b.len()).unwrap(), b);
/// assert_eq!(dt.decode(&pa, a.len()).unwrap(), a);
/// ```
pub fn encode_with(table: &EncodeTable, data: &[u8], out: &mut Vec<u8>) {
    let syms = &table.syms;
    let q = data.len() / LANES;
    let pieces: [&[u8]; LANES] = std::array::from_fn(|l| &data[lane_range(data.len(), l)]);
    // rANS encodes backwards: each lane's bytes are written from the end of its buffer (a
    // symbol costs at most 12 bits, so two bytes a symbol and the final state always fit)
    // and read forwards by the decoder.
    let mut bodies: [Vec<u8>; LANES] = std::array::from_fn(|l| vec![0; 2 * pieces[l].len() + 4]);
    let mut at: [usize; LANES] = std::array::from_fn(|l| bodies[l].len());
    let mut x = [RANS_L; LANES];
    let code = |piece: &[u8], i: usize, x: u32, body: &mut [u8], at: &mut usize| {
        let ctx = if i == 0 { 0 } else { piece[i - 1] } as usize;
        syms[ctx][piece[i] as usize].put(x, body, at)
    };
    // The last lane's extra symbols first, then the four lanes in step (four independent
    // dependency chains for the CPU to overlap).
    let last = LANES - 1;
    for i in (q..pieces[last].len()).rev() {
        x[last] = code(pieces[last], i, x[last], &mut bodies[last], &mut at[last]);
    }
    for i in (0..q).rev() {
        for l in 0..LANES {
            x[l] = code(pieces[l], i, x[l], &mut bodies[l], &mut at[l]);
        }
    }
    for l in 0..LANES {
        at[l] -= 4;
        bodies[l][at[l]..at[l] + 4].copy_from_slice(&x[l].to_le_bytes());
    }
    for l in 0..LANES - 1 {
        varint::put(out, (bodies[l].len() - at[l]) as u64);
    }
    for l in 0..LANES {
        out.extend_from_slice(&bodies[l][at[l]..]);
    }
}

/// One context's decoding table: the symbol of each slot, and each symbol's frequency (low 16
/// bits) and start (high 16 bits).
///
/// A byte per slot, not a packed word with the frequency beside it: the hot contexts' tables
/// (5 KiB each instead of 16 KiB) then stay in the L1 cache, which a step waits on.
struct Context {
    sym: [u8; TOTAL as usize],
    range: [u32; 256],
}

/// A lane being decoded.
struct Lane<'a> {
    src: &'a [u8],
    at: usize,
    x: u32,
    prev: u8,
    /// What is left of the lane's part of the output.
    out: &'a mut [u8],
}

/// Decodes one symbol of `lane`.
#[inline(always)]
fn step(lane: &mut Lane<'_>, by_ctx: &[&Context; 256]) -> u8 {
    let slot = lane.x & (TOTAL - 1);
    let ctx = by_ctx[lane.prev as usize];
    let s = ctx.sym[slot as usize];
    let e = ctx.range[s as usize];
    // Wrapping only so that no input can make a debug build's overflow check panic: a parsed
    // table (each symbol once, every slot inside its symbol's range) and the all-zero one of
    // an unseen context never wrap.
    let x = (e & 0xffff)
        .wrapping_mul(lane.x >> PROB_BITS)
        .wrapping_add(slot.wrapping_sub(e >> 16));
    // Renormalise without a loop: a decoded state is at least 2^11, so at most two bytes
    // bring it back to [2^23, 2^31). Bytes past the end read as 0 and move `at` past the
    // lane, which the caller reports as truncation.
    let n = (x < RANS_L) as u32 + (x < (RANS_L >> 8)) as u32;
    let b0 = lane.src.get(lane.at).copied().unwrap_or(0) as u32;
    let b1 = lane.src.get(lane.at + 1).copied().unwrap_or(0) as u32;
    let w = (b0 << 8) | b1;
    lane.x = (x << (8 * n)) | (w >> (16 - 8 * n));
    lane.at += n as usize;
    lane.prev = s;
    s
}

/// Decoder tables parsed from a serialised frequency table, reusable for every piece coded
/// with it.
pub struct DecodeTable {
    /// Context -> index into `tables`; contexts never seen point past the end.
    table_of: [u16; 256],
    tables: Vec<Context>,
}

/// Unseen contexts decode through a table of symbol 0 with frequency 0: decoding stays
/// defined; such a stream cannot be valid, and the length and CRC checks of the caller catch
/// it, so the hot loop needs no extra branch.
static EMPTY_TABLE: Context = Context {
    sym: [0; TOTAL as usize],
    range: [0; 256],
};

impl DecodeTable {
    /// Parses the table at the start of `src`; returns it and the bytes it took.
    pub fn parse(src: &[u8]) -> Result<(DecodeTable, usize), DecodeError> {
        let bad = DecodeError;
        let mut at = 0;
        let n_ctx = varint::get(src, &mut at).ok_or(bad("truncated table"))? as usize;
        if n_ctx > 256 {
            return Err(bad("too many contexts"));
        }
        let mut table_of = [u16::MAX; 256];
        let mut tables: Vec<Context> = Vec::with_capacity(n_ctx);
        for t in 0..n_ctx {
            let c = *src.get(at).ok_or(bad("truncated table"))? as usize;
            at += 1;
            if table_of[c] != u16::MAX {
                return Err(bad("context listed twice"));
            }
            let n = varint::get(src, &mut at).ok_or(bad("truncated table"))? as usize;
            if n == 0 || n > 256 {
                return Err(bad("bad symbol count"));
            }
            let mut cum = 0u32;
            let mut table = Context {
                sym: [0; TOTAL as usize],
                range: [0; 256],
            };
            for _ in 0..n {
                let s = *src.get(at).ok_or(bad("truncated table"))?;
                at += 1;
                let f = varint::get(src, &mut at).ok_or(bad("truncated table"))?;
                // Subtracted, not added: `f` comes from the input and may be near u64::MAX.
                if f == 0 || f > (TOTAL - cum) as u64 {
                    return Err(bad("frequencies exceed the total"));
                }
                let f = f as u32;
                if table.range[s as usize] != 0 {
                    return Err(bad("symbol listed twice"));
                }
                table.sym[cum as usize..(cum + f) as usize].fill(s);
                table.range[s as usize] = f | cum << 16;
                cum += f;
            }
            tables.push(table);
            if cum != TOTAL {
                return Err(bad("frequencies do not sum to the total"));
            }
            table_of[c] = t as u16;
        }
        Ok((DecodeTable { table_of, tables }, at))
    }

    /// Decodes lanes made by [`encode_with`] into exactly `len` bytes.
    pub fn decode(&self, src: &[u8], len: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = vec![0u8; len];
        self.decode_into(src, &mut out)?;
        Ok(out)
    }

    /// Decodes lanes made by [`encode_with`] into `out`, which has exactly the decoded length.
    pub fn decode_into(&self, src: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
        // An array indexed by a byte needs no bounds check in the hot loop.
        let by_ctx: [&Context; 256] = std::array::from_fn(|c| {
            self.tables
                .get(self.table_of[c] as usize)
                .unwrap_or(&EMPTY_TABLE)
        });
        let mut lanes = lanes_of(src, out)?;
        // Advance the four lanes together: their chains are independent, so the CPU overlaps
        // them. (Eight lanes, two pieces at once, measured slower: their states no longer fit
        // in registers.) Then the last lane's remainder (its 0-3 extra symbols), alone.
        lockstep::<LANES>(&mut lanes, &by_ctx);
        lockstep::<1>(&mut lanes[LANES - 1..], &by_ctx);
        // A lane that ran out of bytes was cut short or corrupted.
        if lanes.iter().any(|l| l.at > l.src.len()) {
            return Err(DecodeError("truncated data"));
        }
        Ok(())
    }
}

/// Cuts `src` into its [`LANES`] lanes, each with its part of `out`.
fn lanes_of<'a>(src: &'a [u8], out: &'a mut [u8]) -> Result<Vec<Lane<'a>>, DecodeError> {
    let bad = DecodeError;
    let len = out.len();
    let mut at = 0;
    let mut sizes = [0usize; LANES];
    for size in sizes.iter_mut().take(LANES - 1) {
        *size = varint::get(src, &mut at).ok_or(bad("truncated lane sizes"))? as usize;
    }
    let rest = src.len().checked_sub(at).ok_or(bad("truncated data"))?;
    sizes[LANES - 1] = sizes[..LANES - 1]
        .iter()
        .try_fold(rest, |r, &s| r.checked_sub(s))
        .ok_or(bad("lane sizes exceed the data"))?;
    let mut out = out;
    let mut lanes = Vec::with_capacity(LANES);
    for (i, size) in sizes.into_iter().enumerate() {
        let lane = &src[at..at + size];
        at += size;
        let state = lane.get(..4).ok_or(bad("truncated state"))?;
        let (mine, rest) = std::mem::take(&mut out).split_at_mut(lane_range(len, i).len());
        out = rest;
        lanes.push(Lane {
            src: lane,
            at: 4,
            x: u32::from_le_bytes([state[0], state[1], state[2], state[3]]),
            prev: 0,
            out: mine,
        });
    }
    Ok(lanes)
}

/// Decodes as many symbols as the shortest of `N` lanes still needs, in every one of them,
/// the lanes in step so that their independent chains overlap.
#[inline(always)]
fn lockstep<const N: usize>(lanes: &mut [Lane<'_>], by_ctx: &[&Context; 256]) {
    // Callers pass exactly N lanes; a fixed-size array lets the compiler keep their states
    // in registers.
    let Ok(lanes) = <&mut [Lane<'_>; N]>::try_from(lanes) else {
        return;
    };
    let m = lanes.iter().map(|l| l.out.len()).min().unwrap_or(0);
    for i in 0..m {
        for l in lanes.iter_mut() {
            let s = step(l, by_ctx);
            l.out[i] = s;
        }
    }
    for l in lanes.iter_mut() {
        l.out = &mut std::mem::take(&mut l.out)[m..];
    }
}

/// Decompresses a stream made by [`encode`] into exactly `len` bytes.
pub fn decode(src: &[u8], len: usize) -> Result<Vec<u8>, DecodeError> {
    let (table, at) = DecodeTable::parse(src)?;
    table.decode(&src[at..], len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder as first written, with a division per symbol, one lane after another: the
    /// reciprocal and the lanes in step must give the same bytes.
    fn encode_by_division(counts: &Counts, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        EncodeTable::build(counts, &mut out);
        let (mut start, mut freq) = (vec![[0u32; 256]; 256], vec![[0u32; 256]; 256]);
        for c in 0..256 {
            let f = normalise(&counts.0[c]);
            let mut cum = 0;
            for s in 0..256 {
                (start[c][s], freq[c][s]) = (cum, f[s]);
                cum += f[s];
            }
        }
        let mut lanes = Vec::new();
        for lane in 0..LANES {
            let piece = &data[lane_range(data.len(), lane)];
            let mut body = Vec::new();
            let mut x = RANS_L;
            for i in (0..piece.len()).rev() {
                let ctx = if i == 0 { 0 } else { piece[i - 1] } as usize;
                let (st, fr) = (start[ctx][piece[i] as usize], freq[ctx][piece[i] as usize]);
                while x >= ((RANS_L >> PROB_BITS) << 8) * fr {
                    body.push(x as u8);
                    x >>= 8;
                }
                x = ((x / fr) << PROB_BITS) + (x % fr) + st;
            }
            body.extend_from_slice(&x.to_be_bytes());
            body.reverse();
            lanes.push(body);
        }
        for lane in &lanes[..LANES - 1] {
            varint::put(&mut out, lane.len() as u64);
        }
        lanes.concat().iter().for_each(|&b| out.push(b));
        out
    }

    #[test]
    fn reciprocals_code_exactly_as_division() {
        // Frequencies from 1 (rare symbols beside a dominant one) to 4096 (a context with one
        // symbol), lengths that leave the last lane 0-3 symbols more.
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for (n, spread) in [(0, 1), (5, 3), (1003, 7), (40_001, 41), (70_002, 256)] {
            let data: Vec<u8> = (0..n)
                .map(|_| match next() % 100 {
                    0 => (next() % spread) as u8,
                    1..=3 => 0xff,
                    _ => 40 - (next() % 3) as u8,
                })
                .collect();
            let mut counts = Counts::default();
            counts.add(&data);
            let want = encode_by_division(&counts, &data);
            let mut got = Vec::new();
            let table = EncodeTable::build(&counts, &mut got);
            encode_with(&table, &data, &mut got);
            assert_eq!(got, want, "{n} {spread}");
            assert_eq!(decode(&got, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn round_trips_edge_cases() {
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![7],
            vec![0xff; 1000],
            (0..=255u8).collect(),
            (0..100_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        ];
        // Many rare symbols in one context force the rounding path that takes from others.
        let mut rare = vec![0u8; 5000];
        rare.extend(1..=255u8);
        cases.push(rare);
        for data in cases {
            let enc = encode(&data);
            assert_eq!(decode(&enc, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| b"IIII#??5"[(i * 7 % 8) as usize])
            .collect();
        let enc = encode(&data);
        // A stream cut anywhere is reported, not decoded into plausible symbols: the
        // branchless renormalisation reads zeros past a lane's end and must still notice.
        for cut in 0..enc.len() {
            assert!(decode(&enc[..cut], data.len()).is_err(), "cut at {cut}");
        }
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x5a;
            let _ = decode(&bad, data.len());
        }
        // One context, two symbols, the second with a frequency near u64::MAX (found by
        // fuzz/rans): it must not wrap past the total.
        let mut huge = vec![1, 0, 2, b'a', 10, b'b'];
        varint::put(&mut huge, u64::MAX - 5);
        assert!(decode(&huge, 4).is_err());
        // One symbol listed twice in a context, its halves summing to the total: the decoder
        // keeps one range per symbol, so it must refuse the table rather than mix them.
        let mut twice = vec![1, 0, 2, b'a'];
        varint::put(&mut twice, (TOTAL / 2) as u64);
        twice.push(b'a');
        varint::put(&mut twice, (TOTAL / 2) as u64);
        assert_eq!(
            DecodeTable::parse(&twice).err().map(|e| e.0),
            Some("symbol listed twice")
        );
    }
}
