// bams3.hpp: header-only C++17 wrapper over the BAMS3 C API (bams3.h).
//
// RAII handles, exceptions carrying the library's status code and message, range-for over a
// query, std::string_view accessors. Every call goes through the C ABI; no logic lives here.
//
//   bams3::Reader reader("sample.bams3");
//   for (const bams3::Record &rec : reader.query("chr1:1000-2000"))
//       std::cout << rec.sam_line() << '\n';
//
// Lifetimes follow the C API: a Record (and every string_view it returns) is valid until the
// iterator advances; Reader::header_text() and reference names until the Reader is destroyed.
#ifndef BAMS3_HPP
#define BAMS3_HPP

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "bams3.h"

namespace bams3 {

/// A failed call: the status code (BAMS3_ERR_*) and the library's message.
class Error : public std::runtime_error {
  public:
    Error(int code, const std::string &message) : std::runtime_error(message), code_(code) {}
    int code() const noexcept { return code_; }

  private:
    int code_;
};

namespace detail {
inline void check(int rc) {
    if (rc < 0) {
        const char *msg = bams3_last_error();
        std::string text = (msg && *msg) ? msg : bams3_strerror(rc);
        throw Error(rc, text);
    }
}
inline std::string_view view(const char *s) { return s ? std::string_view(s) : std::string_view(); }

struct ReaderFree {
    void operator()(bams3_reader *r) const noexcept { bams3_reader_free(r); }
};
struct WriterFree {
    void operator()(bams3_writer *w) const noexcept { bams3_writer_free(w); }
};
struct QueryFree {
    void operator()(bams3_query *q) const noexcept { bams3_query_free(q); }
};
} // namespace detail

/// Throws unless the loaded library speaks the ABI this header was compiled against.
inline void check_abi() {
    unsigned v = bams3_abi_version();
    if ((v >> 16) != BAMS3_ABI_VERSION_MAJOR || (v & 0xffffu) < BAMS3_ABI_VERSION_MINOR)
        throw Error(BAMS3_ERR_INVALID, "libbams3 ABI mismatch: loaded " + std::to_string(v >> 16) +
                                           "." + std::to_string(v & 0xffffu) + ", compiled for " +
                                           std::to_string(BAMS3_ABI_VERSION_MAJOR) + "." +
                                           std::to_string(BAMS3_ABI_VERSION_MINOR));
}

/// The library version, e.g. "0.3.0".
inline std::string_view version() { return bams3_version(); }

/// A view of one record of a query; valid until the query advances.
class Record {
  public:
    explicit Record(const bams3_record *r = nullptr) : r_(r) {}

    std::string_view name() const { return text(bams3_record_name); }
    std::string_view ref_name() const { return text(bams3_record_ref_name); }
    std::string_view cigar() const { return text(bams3_record_cigar_string); }
    std::string_view sequence() const { return text(bams3_record_sequence); }
    std::string_view qualities() const { return text(bams3_record_qualities); }
    std::string_view tags() const { return text(bams3_record_tags_sam); }
    /// The record as one SAM line (no newline), as samtools view prints it.
    std::string_view sam_line() const { return text(bams3_record_sam_line); }

    uint16_t flag() const noexcept { return bams3_record_flag(r_); }
    int32_t ref_id() const noexcept { return bams3_record_ref_id(r_); }
    /// 0-based position, -1 for none.
    int64_t pos() const noexcept { return bams3_record_pos(r_); }
    /// 0-based exclusive end on the reference.
    int64_t end() const noexcept { return bams3_record_end(r_); }
    uint8_t mapq() const noexcept { return bams3_record_mapq(r_); }
    int32_t next_ref_id() const noexcept { return bams3_record_next_ref_id(r_); }
    int64_t next_pos() const noexcept { return bams3_record_next_pos(r_); }
    int64_t tlen() const noexcept { return bams3_record_tlen(r_); }

    /// Raw BAM bytes (the layout Writer::add_bam takes).
    std::string_view bam() const {
        const uint8_t *data = nullptr;
        size_t len = 0;
        detail::check(bams3_record_bam(r_, &data, &len));
        return std::string_view(reinterpret_cast<const char *>(data), len);
    }

    const bams3_record *raw() const noexcept { return r_; }

  private:
    std::string_view text(int (*fn)(const bams3_record *, const char **)) const {
        const char *s = nullptr;
        detail::check(fn(r_, &s));
        return detail::view(s);
    }
    const bams3_record *r_;
};

/// Record filters (samtools view -q / -f / -F).
struct Filter {
    uint8_t min_mapq = 0;
    uint16_t require_flags = 0;
    uint16_t exclude_flags = 0;
};

/// A running query: iterate it once with range-for. Errors while iterating throw bams3::Error.
class Query {
  public:
    class iterator {
      public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Record;
        using difference_type = std::ptrdiff_t;
        using pointer = const Record *;
        using reference = const Record &;

        iterator() = default;
        explicit iterator(bams3_query *q) : q_(q) { advance(); }
        reference operator*() const { return rec_; }
        pointer operator->() const { return &rec_; }
        iterator &operator++() {
            advance();
            return *this;
        }
        bool operator==(const iterator &o) const { return q_ == o.q_; }
        bool operator!=(const iterator &o) const { return q_ != o.q_; }

      private:
        void advance() {
            const bams3_record *r = nullptr;
            int rc = bams3_query_next(q_, &r);
            if (rc < 0) {
                q_ = nullptr;
                detail::check(rc);
            }
            if (rc == 0) {
                q_ = nullptr;
                rec_ = Record();
            } else {
                rec_ = Record(r);
            }
        }
        bams3_query *q_ = nullptr;
        Record rec_;
    };

    explicit Query(bams3_query *q) : q_(q) {}
    iterator begin() { return iterator(q_.get()); }
    iterator end() { return iterator(); }

    /// The next record, or false at the end.
    bool next(Record &out) {
        const bams3_record *r = nullptr;
        int rc = bams3_query_next(q_.get(), &r);
        detail::check(rc);
        if (rc == 0)
            return false;
        out = Record(r);
        return true;
    }

    bams3_query *raw() const noexcept { return q_.get(); }

  private:
    std::unique_ptr<bams3_query, detail::QueryFree> q_;
};

/// An open dataset (local directory or s3:// prefix).
class Reader {
  public:
    explicit Reader(const std::string &location) {
        bams3_reader *r = nullptr;
        detail::check(bams3_reader_open(location.c_str(), &r));
        r_.reset(r);
    }

    /// The SAM header, as samtools view -H prints it.
    std::string_view header_text() const {
        const char *s = nullptr;
        detail::check(bams3_reader_header_text(r_.get(), &s));
        return detail::view(s);
    }

    size_t n_references() const {
        size_t n = 0;
        detail::check(bams3_reader_n_references(r_.get(), &n));
        return n;
    }

    /// Reference i: name and length.
    std::pair<std::string_view, int64_t> reference(size_t i) const {
        const char *name = nullptr;
        int64_t len = 0;
        detail::check(bams3_reader_reference(r_.get(), i, &name, &len));
        return {detail::view(name), len};
    }

    /// Records overlapping a region (samtools syntax), or every record for an empty region.
    Query query(const std::string &region = std::string(), const Filter &f = Filter()) const {
        bams3_filter cf{f.min_mapq, f.require_flags, f.exclude_flags};
        bams3_query *q = nullptr;
        detail::check(
            bams3_reader_query(r_.get(), region.empty() ? nullptr : region.c_str(), &cf, &q));
        return Query(q);
    }

    /// Like query(), but decoding only what the BAMS3_COLUMN_* bits in `columns` need besides
    /// each record's placement; the other fields hold placeholders (name "*", bases '=',
    /// qualities missing, no mate), as bams3_reader_query_columns says.
    ///
    ///   for (const auto &rec : reader.query_columns("chr1", BAMS3_COLUMN_CIGAR))
    ///       coverage.add(rec.pos(), rec.cigar());
    Query query_columns(const std::string &region, uint32_t columns,
                        const Filter &f = Filter()) const {
        bams3_filter cf{f.min_mapq, f.require_flags, f.exclude_flags};
        bams3_query *q = nullptr;
        detail::check(bams3_reader_query_columns(
            r_.get(), region.empty() ? nullptr : region.c_str(), &cf, columns, &q));
        return Query(q);
    }

    /// Statistics as JSON (bams3 stats --json).
    std::string stats_json() const {
        char *s = nullptr;
        detail::check(bams3_reader_stats_json(r_.get(), &s));
        std::string out(s);
        bams3_string_free(s);
        return out;
    }

    bams3_reader *raw() const noexcept { return r_.get(); }

  private:
    std::unique_ptr<bams3_reader, detail::ReaderFree> r_;
};

/// Writer options; defaults from the library.
struct WriterOptions {
    bams3_writer_options c;
    WriterOptions() { detail::check(bams3_writer_options_default(&c)); }
};

/// A dataset being written. Thread-safe: add records from any number of threads. Destroying a
/// Writer that was not finished aborts it (nothing that looks complete is left).
class Writer {
  public:
    Writer(const std::string &location, const std::string &sam_header,
           const WriterOptions &opts = WriterOptions()) {
        bams3_writer *w = nullptr;
        detail::check(bams3_writer_open(location.c_str(), sam_header.c_str(), &opts.c, &w));
        w_.reset(w);
    }

    void add_sam(std::string_view line) { detail::check(bams3_writer_add_sam(w_.get(), line.data(), line.size())); }
    void add_bam(const uint8_t *data, size_t len) { detail::check(bams3_writer_add_bam(w_.get(), data, len)); }
    /// Commits the dataset.
    void finish() { detail::check(bams3_writer_finish(w_.get())); }
    /// Deletes what was written.
    void abort() { detail::check(bams3_writer_abort(w_.get())); }

    bams3_writer *raw() const noexcept { return w_.get(); }

  private:
    std::unique_ptr<bams3_writer, detail::WriterFree> w_;
};

} // namespace bams3

#endif // BAMS3_HPP
