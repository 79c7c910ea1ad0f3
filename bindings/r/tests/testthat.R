# The suite needs real data prepared by ../test.sh (BAM files converted with the bams3
# command, their BAI indexes and a loopback S3 server): run `bindings/r/test.sh`.
library(testthat)
library(bams3)
test_check("bams3")
