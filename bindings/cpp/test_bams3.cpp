// test_bams3.cpp: the C++ wrapper: RAII, exceptions with code and message, range-for, views.
//
// Usage: test_bams3 WORKDIR
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "bams3.hpp"

static int passed, failed;
#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (cond)                                                                                 \
            passed++;                                                                             \
        else {                                                                                    \
            failed++;                                                                             \
            std::cerr << __FILE__ << ":" << __LINE__ << ": check failed: " #cond "\n";            \
        }                                                                                         \
    } while (0)

template <class F> static int error_code(F &&f) {
    try {
        f();
    } catch (const bams3::Error &e) {
        return std::string(e.what()).empty() ? 1 : e.code();
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: test_bams3 WORKDIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    const std::string header = "@SQ\tSN:chr1\tLN:1000\n";
    const std::vector<std::string> lines = {
        "a\t0\tchr1\t10\t60\t5M\t*\t0\t0\tACGTA\tIIIII\tNM:i:1",
        "b\t16\tchr1\t20\t3\t5M\t*\t0\t0\tCCCCC\t*",
    };

    CHECK(bams3::version() == BAMS3_VERSION_STRING);
    bams3::check_abi();

    {
        bams3::WriterOptions opts;
        opts.c.threads = 1;
        bams3::Writer w(dir + "/cpp", header, opts);
        for (auto it = lines.rbegin(); it != lines.rend(); ++it)
            w.add_sam(*it);
        CHECK(error_code([&] { w.add_sam("x\t0\tchrZ\t1\t0\t1M\t*\t0\t0\tA\t*"); }) == BAMS3_ERR_CORRUPT);
        w.finish();
        CHECK(error_code([&] { w.add_sam(lines[0]); }) == BAMS3_ERR_MISUSE);
    }
    {
        bams3::Writer w(dir + "/cpp-dropped", header);
        w.add_sam(lines[0]);
    } // destroyed unfinished: aborted
    CHECK(error_code([&] { bams3::Reader r(dir + "/cpp-dropped"); }) != 0);
    CHECK(error_code([&] { bams3::Writer w(dir + "/cpp", header); }) == BAMS3_ERR_EXISTS);
    CHECK(error_code([&] { bams3::Reader r(dir + "/missing"); }) == BAMS3_ERR_NOT_FOUND);

    bams3::Reader r(dir + "/cpp");
    CHECK(r.header_text() == header);
    CHECK(r.n_references() == 1);
    CHECK(r.reference(0).first == "chr1" && r.reference(0).second == 1000);
    CHECK(error_code([&] { r.reference(1); }) == BAMS3_ERR_INVALID);

    size_t i = 0;
    for (const bams3::Record &rec : r.query()) {
        CHECK(i < lines.size() && rec.sam_line() == lines[i]);
        i++;
    }
    CHECK(i == lines.size());
    for (const bams3::Record &rec : r.query("chr1:12-12")) {
        CHECK(rec.name() == "a" && rec.pos() == 9 && rec.end() == 14 && rec.mapq() == 60);
        CHECK(rec.cigar() == "5M" && rec.sequence() == "ACGTA" && rec.qualities() == "IIIII");
        CHECK(rec.tags() == "NM:i:1" && rec.ref_name() == "chr1" && rec.ref_id() == 0);
        CHECK(rec.flag() == 0 && rec.next_ref_id() == -1 && rec.next_pos() == -1 && rec.tlen() == 0);
        CHECK(rec.bam().size() > 32);
    }
    bams3::Filter f;
    f.min_mapq = 10;
    size_t n = 0;
    for (const auto &rec : r.query("chr1", f)) {
        (void)rec;
        n++;
    }
    CHECK(n == 1);
    // Only the placement decoded: the same records, placeholders for names, bases, qualities.
    size_t m = 0;
    for (const auto &rec : r.query_columns("chr1:12-12", BAMS3_COLUMN_CIGAR)) {
        CHECK(rec.pos() == 9 && rec.end() == 14 && rec.cigar() == "5M" && rec.mapq() == 60);
        CHECK(rec.name() == "*" && rec.sequence() == "=====" && rec.qualities() == "*");
        CHECK(rec.tags() == "NM:i:1");
        m++;
    }
    CHECK(m == 1);
    for (const auto &rec : r.query_columns("chr1:12-12", BAMS3_COLUMN_ALL))
        CHECK(rec.name() == "a" && rec.sequence() == "ACGTA" && rec.qualities() == "IIIII");
    CHECK(error_code([&] { r.query_columns("", 1u << 9); }) == BAMS3_ERR_INVALID);
    bams3::Query q = r.query("chr1:20");
    bams3::Record rec;
    CHECK(q.next(rec) && rec.name() == "b" && !q.next(rec));

    try {
        r.query("chr9:1-2");
        CHECK(false);
    } catch (const bams3::Error &e) {
        CHECK(e.code() == BAMS3_ERR_REGION && std::string(e.what()).find("chr9") != std::string::npos);
    }
    CHECK(r.stats_json().find("\"total_reads\": 2") != std::string::npos);

    std::printf("test_bams3: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
