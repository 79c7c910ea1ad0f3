// query.cpp: print the records of a region as SAM, like `samtools view [-h] DATASET [REGION]`.
//
//   ./query -h sample.bams3 chr1:10000-20000
#include <cstring>
#include <iostream>
#include <string>

#include "bams3.hpp"

int main(int argc, char **argv) {
    bool header = false;
    int i = 1;
    if (i < argc && std::strcmp(argv[i], "-h") == 0) {
        header = true;
        i++;
    }
    if (argc - i < 1 || argc - i > 2) {
        std::cerr << "usage: " << argv[0] << " [-h] DATASET [REGION]\n";
        return 2;
    }
    try {
        bams3::check_abi();
        bams3::Reader reader(argv[i]);
        if (header)
            std::cout << reader.header_text();
        std::string region = argc - i == 2 ? argv[i + 1] : "";
        for (const bams3::Record &rec : reader.query(region))
            std::cout << rec.sam_line() << '\n';
    } catch (const bams3::Error &e) {
        std::cerr << "query: " << e.what() << " (" << bams3_strerror(e.code()) << ")\n";
        return 1;
    }
    return std::cout.good() ? 0 : 1;
}
