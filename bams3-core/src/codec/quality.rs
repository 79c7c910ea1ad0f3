//! Qualities coded with contexts from the read they belong to (the archive profile's codec 4).
//!
//! Order-1 rANS (codec 2) sees qualities as one byte stream. Sequencers' quality profiles depend
//! as much on where a base is in the read (cycle) and which read of the pair it is as on the
//! previous value, and BAM stores the qualities of reverse-strand reads reversed, which hides the
//! cycle. Measured on the ART benchmark input: order-1 entropy 1.81 bits per quality; with the
//! previous quality, the cycle in buckets of 4 and the read-2 flag, coding reverse-strand reads
//! from their last quality, 1.55.
//!
//! The model is static: the encoder counts every record block of a chunk and writes one table
//! (the directory's parameters) that all blocks share, so each block still decodes on its own.
//! A block is one rANS lane (32-bit state, 12-bit probabilities, as codec 2). The layout is in
//! `docs/FORMAT.md` ("Codec 4").

use super::rans::{self, DecodeError};
use super::varint;

const PROB_BITS: u32 = 12;
const TOTAL: u32 = 1 << PROB_BITS;
const RANS_L: u32 = 1 << 23;
/// Position buckets: `min(cycle, 255) >> shift`, so at most 64 buckets (shift >= 2).
const MIN_SHIFT: u8 = 2;
/// A shift of 8 puts every cycle in bucket 0: no position context.
const NO_POSITION: u8 = 8;
/// Distinct quality values above which the position is not counted (the counting table would
/// grow as the square of the alphabet times 64 buckets).
const MAX_ALPHABET_WITH_POSITION: usize = 64;

/// What the model needs to know of one record: its length and the two flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadShape {
    /// Sequence length (number of qualities).
    pub len: usize,
    /// Flag 0x10: qualities are stored reversed; the model codes them from the last.
    pub reverse: bool,
    /// Flag 0x80: the second read of a pair has its own quality profile.
    pub second: bool,
}

impl ReadShape {
    /// The shape of a record with `flag` and `len` qualities.
    ///
    /// ```
    /// use bams3_core::codec::quality::ReadShape;
    /// let r = ReadShape::from_flag(0x90, 150);
    /// assert!(r.reverse && r.second && r.len == 150);
    /// ```
    pub fn from_flag(flag: u16, len: usize) -> Self {
        ReadShape {
            len,
            reverse: flag & 0x10 != 0,
            second: flag & 0x80 != 0,
        }
    }
}

/// The context of a quality: position bucket, read-2 bit, previous quality (0 at a read's
/// first cycle).
fn context(shift: u8, use_second: bool, cycle: usize, second: bool, prev: u8) -> usize {
    let bucket = cycle.min(255) >> shift;
    let second = usize::from(use_second && second);
    ((bucket << 1) | second) << 8 | prev as usize
}

const N_CONTEXTS: usize = 64 * 2 * 256;

/// Visits the qualities of `reads` in model order: `(index in qual, cycle, second)`; reverse
/// reads from their last byte. Stops at the end of `len` bytes.
fn for_each_in_order(reads: &[ReadShape], len: usize, mut f: impl FnMut(usize, usize, bool)) {
    let mut base = 0usize;
    for r in reads {
        let n = r.len.min(len.saturating_sub(base));
        for cycle in 0..n {
            let i = if r.reverse {
                base + n - 1 - cycle
            } else {
                base + cycle
            };
            f(i, cycle, r.second);
        }
        base += n;
    }
}

/// Counts of every record block of a stream, from which [`EncodeModel::build`] chooses the
/// contexts and writes one table.
#[derive(Default)]
pub struct Counts {
    blocks: Vec<(Vec<u8>, Vec<ReadShape>)>,
}

impl Counts {
    /// Adds one block: its qualities and the shapes of its records.
    pub fn add(&mut self, qual: &[u8], reads: &[ReadShape]) {
        self.blocks.push((qual.to_vec(), reads.to_vec()));
    }
}

/// An encoder's frequency tables for one chunk's blocks.
pub struct EncodeModel {
    shift: u8,
    use_second: bool,
    /// Per context: (start, freq) per symbol; empty when the context never occurs.
    tables: Vec<Vec<(u16, u16)>>,
}

impl EncodeModel {
    /// Chooses the context (position bucket size, whether the read-2 bit counts) that gives the
    /// smallest estimated total of coded bytes and table, writes the table to `params` and
    /// returns the model.
    pub fn build(counts: &Counts, params: &mut Vec<u8>) -> EncodeModel {
        let mut seen = [false; 256];
        seen[0] = true;
        for (q, _) in &counts.blocks {
            for &b in q {
                seen[b as usize] = true;
            }
        }
        let alphabet: Vec<u8> = (0..=255u8).filter(|&b| seen[b as usize]).collect();
        let a = alphabet.len();
        let mut index = [0usize; 256];
        for (i, &b) in alphabet.iter().enumerate() {
            index[b as usize] = i;
        }
        let with_position = a <= MAX_ALPHABET_WITH_POSITION;
        let n_buckets = if with_position { 64 } else { 1 };
        let fine_shift = if with_position {
            MIN_SHIFT
        } else {
            NO_POSITION
        };
        // fine[((bucket * 2 + second) * a + prev) * a + sym]
        let mut fine = vec![0u32; n_buckets * 2 * a * a];
        for (q, reads) in &counts.blocks {
            let mut prev = 0u8;
            for_each_in_order(reads, q.len(), |i, cycle, second| {
                if cycle == 0 {
                    prev = 0;
                }
                let bucket = cycle.min(255) >> fine_shift;
                let s = q[i];
                let c = ((bucket * 2 + usize::from(second)) * a + index[prev as usize]) * a
                    + index[s as usize];
                fine[c] += 1;
                prev = s;
            });
        }
        let shifts: &[u8] = if with_position {
            &[2, 3, 4, 5, 6, NO_POSITION]
        } else {
            &[NO_POSITION]
        };
        let mut best: Option<(f64, u8, bool)> = None;
        for &shift in shifts {
            for use_second in [false, true] {
                let cost = estimate(&fine, a, n_buckets, fine_shift, shift, use_second);
                if best.is_none_or(|(c, _, _)| cost < c) {
                    best = Some((cost, shift, use_second));
                }
            }
        }
        let (_, shift, use_second) = best.expect("at least one candidate");
        // Gather the chosen contexts' counts.
        let mut by_ctx: Vec<Option<Box<[u32; 256]>>> = (0..N_CONTEXTS).map(|_| None).collect();
        for bucket in 0..n_buckets {
            for second in 0..2 {
                for prev in 0..a {
                    let row = ((bucket * 2 + second) * a + prev) * a;
                    let cycle = bucket << fine_shift;
                    let ctx = context(shift, use_second, cycle, second == 1, alphabet[prev]);
                    for sym in 0..a {
                        let n = fine[row + sym];
                        if n > 0 {
                            by_ctx[ctx].get_or_insert_with(|| Box::new([0; 256]))
                                [alphabet[sym] as usize] += n;
                        }
                    }
                }
            }
        }
        params.push(shift);
        params.push(u8::from(use_second));
        let present = by_ctx.iter().filter(|c| c.is_some()).count();
        varint::put(params, present as u64);
        let mut tables = vec![Vec::new(); N_CONTEXTS];
        let mut last = 0usize;
        for (ctx, counts) in by_ctx.iter().enumerate() {
            let Some(counts) = counts else { continue };
            let freq = rans::normalise(counts);
            varint::put(params, (ctx - last) as u64);
            last = ctx;
            let n_sym = freq.iter().filter(|&&f| f > 0).count();
            varint::put(params, n_sym as u64);
            let mut t = vec![(0u16, 0u16); 256];
            let mut start = 0u32;
            for (s, &f) in freq.iter().enumerate() {
                if f == 0 {
                    continue;
                }
                params.push(s as u8);
                varint::put(params, f as u64);
                t[s] = (start as u16, f as u16);
                start += f;
            }
            tables[ctx] = t;
        }
        EncodeModel {
            shift,
            use_second,
            tables,
        }
    }

    /// Codes one block (`qual`, the qualities of `reads` back to back) and appends it to `out`.
    /// The block's data must have been counted into the model's [`Counts`].
    pub fn encode(&self, qual: &[u8], reads: &[ReadShape], out: &mut Vec<u8>) {
        // rANS codes backwards: collect the (start, freq) of every symbol in decoding order,
        // then code them from the last.
        let mut steps: Vec<(u16, u16)> = Vec::with_capacity(qual.len());
        let mut prev = 0u8;
        for_each_in_order(reads, qual.len(), |i, cycle, second| {
            if cycle == 0 {
                prev = 0;
            }
            let s = qual[i];
            let ctx = context(self.shift, self.use_second, cycle, second, prev);
            steps.push(self.tables[ctx][s as usize]);
            prev = s;
        });
        let mut rev = Vec::with_capacity(qual.len() / 2 + 8);
        let mut x = RANS_L;
        for &(start, freq) in steps.iter().rev() {
            let (start, freq) = (start as u32, freq as u32);
            debug_assert!(freq > 0, "symbol not counted into the model");
            let x_max = ((RANS_L >> PROB_BITS) << 8) * freq;
            while x >= x_max {
                rev.push(x as u8);
                x >>= 8;
            }
            x = ((x / freq) << PROB_BITS) + (x % freq) + start;
        }
        rev.extend_from_slice(&x.to_be_bytes());
        rev.reverse();
        out.extend_from_slice(&rev);
    }
}

/// Estimated bytes of coding the fine counts with contexts `(shift, use_second)`: the
/// empirical entropy plus about 3 bytes per table entry.
fn estimate(
    fine: &[u32],
    a: usize,
    n_buckets: usize,
    fine_shift: u8,
    shift: u8,
    use_second: bool,
) -> f64 {
    let n_coarse = (256usize >> shift).max(1);
    let mut coarse = vec![0u64; n_coarse * 2 * a * a];
    for bucket in 0..n_buckets {
        let cb = ((bucket << fine_shift).min(255)) >> shift;
        for second in 0..2 {
            let cs = usize::from(use_second && second == 1);
            for prev in 0..a {
                let from = ((bucket * 2 + second) * a + prev) * a;
                let to = ((cb * 2 + cs) * a + prev) * a;
                for sym in 0..a {
                    coarse[to + sym] += fine[from + sym] as u64;
                }
            }
        }
    }
    let mut bits = 0f64;
    let mut entries = 0usize;
    for row in coarse.chunks(a) {
        let total: u64 = row.iter().sum();
        if total == 0 {
            continue;
        }
        entries += 1;
        for &n in row {
            if n > 0 {
                entries += 1;
                bits -= n as f64 * (n as f64 / total as f64).log2();
            }
        }
    }
    bits / 8.0 + 3.0 * entries as f64
}

/// A decoder's tables, parsed from a directory's parameters.
pub struct DecodeModel {
    shift: u8,
    use_second: bool,
    /// Context → index into `tables`, or `u32::MAX`.
    index: Vec<u32>,
    tables: Vec<DecodeTable>,
}

struct DecodeTable {
    symbol: Box<[u8; TOTAL as usize]>,
    start: [u16; 256],
    freq: [u16; 256],
}

impl DecodeModel {
    /// Parses the parameters written by [`EncodeModel::build`]; all of `src` must be used.
    pub fn parse(src: &[u8]) -> Result<DecodeModel, DecodeError> {
        let bad = DecodeError("corrupt quality model");
        let (&shift, &use_second) = match src {
            [a, b, ..] => (a, b),
            _ => return Err(bad),
        };
        if !(MIN_SHIFT..=NO_POSITION).contains(&shift) || use_second > 1 {
            return Err(bad);
        }
        let mut at = 2usize;
        let n = varint::get(src, &mut at).ok_or(bad)?;
        if n > N_CONTEXTS as u64 {
            return Err(bad);
        }
        let mut index = vec![u32::MAX; N_CONTEXTS];
        let mut tables = Vec::with_capacity(n as usize);
        let mut ctx = 0u64;
        for k in 0..n {
            let delta = varint::get(src, &mut at).ok_or(bad)?;
            if k > 0 && delta == 0 {
                return Err(bad);
            }
            ctx = ctx.checked_add(delta).ok_or(bad)?;
            if ctx >= N_CONTEXTS as u64 {
                return Err(bad);
            }
            let n_sym = varint::get(src, &mut at).ok_or(bad)?;
            if n_sym == 0 || n_sym > 256 {
                return Err(bad);
            }
            let mut t = DecodeTable {
                symbol: Box::new([0; TOTAL as usize]),
                start: [0; 256],
                freq: [0; 256],
            };
            let mut sum = 0u32;
            for _ in 0..n_sym {
                let s = *src.get(at).ok_or(bad)?;
                at += 1;
                let f = varint::get(src, &mut at).ok_or(bad)?;
                if f == 0 || t.freq[s as usize] != 0 || sum as u64 + f > TOTAL as u64 {
                    return Err(bad);
                }
                let f = f as u32;
                t.start[s as usize] = sum as u16;
                t.freq[s as usize] = f as u16;
                t.symbol[sum as usize..(sum + f) as usize].fill(s);
                sum += f;
            }
            if sum != TOTAL {
                return Err(bad);
            }
            index[ctx as usize] = tables.len() as u32;
            tables.push(t);
        }
        if at != src.len() {
            return Err(DecodeError("trailing bytes after the quality model"));
        }
        Ok(DecodeModel {
            shift,
            use_second: use_second == 1,
            index,
            tables,
        })
    }

    /// Decodes one block into `out` (exactly the qualities of `reads`, whose lengths must add up
    /// to `out.len()`).
    pub fn decode_into(
        &self,
        src: &[u8],
        reads: &[ReadShape],
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        if reads.iter().map(|r| r.len).sum::<usize>() != out.len() {
            return Err(DecodeError("record lengths differ from the block's length"));
        }
        if out.is_empty() {
            return if src.is_empty() {
                Ok(())
            } else {
                Err(DecodeError("bytes for an empty block"))
            };
        }
        let head: [u8; 4] = src
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError("truncated quality block"))?;
        let mut x = u32::from_le_bytes(head);
        let mut next = 4usize;
        let mut prev = 0u8;
        let mut base = 0usize;
        for r in reads {
            for cycle in 0..r.len {
                let i = if r.reverse {
                    base + r.len - 1 - cycle
                } else {
                    base + cycle
                };
                let ctx = context(self.shift, self.use_second, cycle, r.second, prev);
                let t = self
                    .tables
                    .get(self.index[ctx] as usize)
                    .ok_or(DecodeError("quality context missing from the model"))?;
                let slot = x & (TOTAL - 1);
                let s = t.symbol[slot as usize];
                let (start, freq) = (t.start[s as usize] as u32, t.freq[s as usize] as u32);
                x = freq.wrapping_mul(x >> PROB_BITS).wrapping_add(slot - start);
                while x < RANS_L {
                    let b = *src
                        .get(next)
                        .ok_or(DecodeError("truncated quality block"))?;
                    x = (x << 8) | b as u32;
                    next += 1;
                }
                out[i] = s;
                prev = s;
            }
            prev = 0;
            base += r.len;
        }
        if next != src.len() {
            return Err(DecodeError("trailing bytes in a quality block"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Codes `blocks` with one model and decodes each block on its own.
    fn round_trip(blocks: &[(Vec<u8>, Vec<ReadShape>)]) -> usize {
        let mut counts = Counts::default();
        for (q, r) in blocks {
            counts.add(q, r);
        }
        let mut params = Vec::new();
        let model = EncodeModel::build(&counts, &mut params);
        let decoder = DecodeModel::parse(&params).unwrap();
        let mut total = params.len();
        for (q, r) in blocks {
            let mut out = Vec::new();
            if !q.is_empty() {
                model.encode(q, r, &mut out);
            }
            total += out.len();
            let mut back = vec![0u8; q.len()];
            decoder.decode_into(&out, r, &mut back).unwrap();
            assert_eq!(&back, q);
        }
        total
    }

    fn reads(lens: &[usize], seed: &mut u64) -> Vec<ReadShape> {
        lens.iter()
            .map(|&len| ReadShape::from_flag((xorshift(seed) & 0x90) as u16, len))
            .collect()
    }

    #[test]
    fn edge_cases_round_trip() {
        let mut seed = 7u64;
        // Empty block, a read of length 0, one symbol, missing qualities (0xFF).
        round_trip(&[(vec![], vec![])]);
        round_trip(&[(vec![], reads(&[0, 0], &mut seed))]);
        round_trip(&[(vec![30], reads(&[1], &mut seed))]);
        round_trip(&[(vec![0xFF; 300], reads(&[150, 150], &mut seed))]);
        // Every one of the 94 printable quality values, and every byte value.
        let all94: Vec<u8> = (0..94).collect();
        round_trip(&[(all94.clone(), reads(&[94], &mut seed))]);
        let every: Vec<u8> = (0..=255).collect();
        round_trip(&[(every, reads(&[100, 156], &mut seed))]);
        // A very long read (past the last position bucket) and many blocks sharing the model.
        let long: Vec<u8> = (0..100_000).map(|i| (i % 41) as u8).collect();
        round_trip(&[(long, reads(&[100_000], &mut seed))]);
        let blocks: Vec<_> = (0..5)
            .map(|_| {
                let q: Vec<u8> = (0..1500)
                    .map(|_| (xorshift(&mut seed) % 42) as u8)
                    .collect();
                (q, reads(&[150; 10], &mut seed))
            })
            .collect();
        round_trip(&blocks);
    }

    #[test]
    fn position_context_beats_order_one_on_cycle_dependent_qualities() {
        // Qualities that fall along the read, reversed on reverse reads as BAM stores them:
        // the cycle context must code them in fewer bytes than order-1 rANS.
        let mut seed = 11u64;
        let mut q = Vec::new();
        let mut shapes = Vec::new();
        for _ in 0..2000 {
            let r = ReadShape::from_flag((xorshift(&mut seed) & 0x90) as u16, 100);
            let mut read: Vec<u8> = (0..100)
                .map(|c| (40 - c / 4) as u8 - (xorshift(&mut seed) % 3) as u8)
                .collect();
            if r.reverse {
                read.reverse();
            }
            q.extend_from_slice(&read);
            shapes.push(r);
        }
        let ours = round_trip(&[(q.clone(), shapes)]);
        let order1 = rans::encode(&q).len();
        assert!(ours * 10 < order1 * 9, "{ours} vs order-1 {order1}");
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut seed = 3u64;
        let q: Vec<u8> = (0..3000)
            .map(|_| (xorshift(&mut seed) % 40) as u8)
            .collect();
        let r = reads(&[150; 20], &mut seed);
        let mut counts = Counts::default();
        counts.add(&q, &r);
        let mut params = Vec::new();
        let model = EncodeModel::build(&counts, &mut params);
        let mut coded = Vec::new();
        model.encode(&q, &r, &mut coded);
        let decoder = DecodeModel::parse(&params).unwrap();
        let mut out = vec![0u8; q.len()];
        assert!(
            decoder
                .decode_into(&coded[..coded.len() / 2], &r, &mut out)
                .is_err()
        );
        assert!(decoder.decode_into(&coded, &r[..19], &mut out).is_err());
        for cut in 0..params.len() {
            assert!(DecodeModel::parse(&params[..cut]).is_err());
        }
        for _ in 0..200 {
            let junk: Vec<u8> = (0..64).map(|_| xorshift(&mut seed) as u8).collect();
            let _ = DecodeModel::parse(&junk);
            let _ = decoder.decode_into(&junk, &r, &mut out);
        }
    }
}
