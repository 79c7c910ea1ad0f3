//! The SAM header of a dataset: its text, kept verbatim, and the reference list.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One reference sequence (`@SQ` line or BAM binary reference entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Sequence name (`SN`).
    pub name: String,
    /// Sequence length (`LN`).
    pub length: u64,
}

/// A SAM header: the text exactly as the input had it, and the references in index order.
///
/// The references come from the BAM binary header when the input is BAM (which is what record
/// reference indices refer to) and from the `@SQ` lines when it is SAM.
///
/// ```
/// use bams3_core::Header;
/// let h = Header::from_sam_text("@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:1000\n").unwrap();
/// assert_eq!(h.references[0].name, "chr1");
/// assert_eq!(h.reference_index("chr1"), Some(0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Header {
    /// SAM header text, every line ending in a newline.
    pub text: String,
    /// Reference sequences, in the order record reference indices use.
    pub references: Vec<Reference>,
}

impl Header {
    /// Parses the references out of SAM header text (the `SN` and `LN` of each `@SQ` line).
    /// An `@SQ` line without `SN` is ignored, as samtools ignores it (it stays in the text).
    pub fn from_sam_text(text: &str) -> Result<Header> {
        let mut references = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if !line.starts_with("@SQ\t") || !line.split('\t').any(|f| f.starts_with("SN:")) {
                continue;
            }
            let mut name = None;
            let mut length = None;
            for field in line.split('\t').skip(1) {
                if let Some(v) = field.strip_prefix("SN:") {
                    name = Some(v.to_string());
                } else if let Some(v) = field.strip_prefix("LN:") {
                    length = v.parse::<u64>().ok();
                }
            }
            match (name, length) {
                (Some(name), Some(length)) => references.push(Reference { name, length }),
                _ => {
                    return Err(Error::corrupt(
                        "SAM header",
                        format!("line {}: @SQ without a valid SN and LN", i + 1),
                    ));
                }
            }
        }
        Ok(Header {
            text: text.to_string(),
            references,
        })
    }

    /// Index of the reference defined by the `n`-th `@SQ` line of the text (counting only
    /// lines with an `SN`, as [`Header::from_sam_text`] does).
    pub fn reference_index_of_sq_line(&self, n: usize) -> Option<usize> {
        let line = self
            .text
            .lines()
            .filter(|l| l.starts_with("@SQ\t") && l.split('\t').any(|f| f.starts_with("SN:")))
            .nth(n)?;
        let name = line.split('\t').find_map(|f| f.strip_prefix("SN:"))?;
        self.reference_index(name)
    }

    /// The header as `samtools view -h` prints it: the text, plus an `@SQ` line for every
    /// reference the text does not declare (BAM files may keep references only in their binary
    /// list, and htslib then writes the lines itself).
    pub fn sam_text(&self) -> String {
        let declared: std::collections::HashSet<&str> = self
            .text
            .lines()
            .filter(|l| l.starts_with("@SQ\t"))
            .filter_map(|l| l.split('\t').find_map(|f| f.strip_prefix("SN:")))
            .collect();
        let missing: Vec<&Reference> = self
            .references
            .iter()
            .filter(|r| !declared.contains(r.name.as_str()))
            .collect();
        if missing.is_empty() {
            return self.text.clone();
        }
        let mut out = String::with_capacity(self.text.len() + 32 * missing.len());
        let mut lines = self.text.lines().peekable();
        // htslib keeps @HD first and puts the generated @SQ lines right after it.
        if let Some(hd) = lines.next_if(|l| l.starts_with("@HD")) {
            out.push_str(hd);
            out.push('\n');
        }
        for r in missing {
            out.push_str(&format!("@SQ\tSN:{}\tLN:{}\n", r.name, r.length));
        }
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// Index of the reference called `name`.
    pub fn reference_index(&self, name: &str) -> Option<usize> {
        self.references.iter().position(|r| r.name == name)
    }

    /// Name of reference `id`, or `*` for -1 or an out-of-range index.
    pub fn reference_name(&self, id: i32) -> &str {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.references.get(i))
            .map_or("*", |r| r.name.as_str())
    }

    /// The sort order declared by `@HD SO:`, if any.
    pub fn sort_order(&self) -> Option<&str> {
        let hd = self.text.lines().next().filter(|l| l.starts_with("@HD"))?;
        hd.split('\t').find_map(|f| f.strip_prefix("SO:"))
    }
}
