#include "exporter/gzip.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "support/scratch_dir.h"

namespace tracecar::exporter {
namespace {

constexpr size_t kNoLimit = size_t{1} << 30;

std::string randomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

// Text-like data that compresses well but not trivially.
std::string spanLikeText(size_t n) {
  std::string out;
  for (int i = 0; out.size() < n; ++i) {
    out += "{\"traceId\":\"" + std::to_string(i * 7919) + "\",\"name\":\"GET /users/{id}\"}";
  }
  out.resize(n);
  return out;
}

std::string compressed(std::string_view data, int level = 6) {
  GzipCompressor compressor(level);
  std::string out;
  const absl::Status status = compressor.compress(data, out);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

using test_support::ScratchDir;

void writeFile(const std::filesystem::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int run(const std::string& command) { return std::system(command.c_str()); }

// ---------------------------------------------------------------------------------------------
// Round trips

struct RoundTripCase {
  const char* name;
  std::string data;
};

class GzipRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(GzipRoundTrip, DecompressesToTheInput) {
  const std::string& data = GetParam().data;
  const std::string gz = compressed(data);
  ASSERT_GE(gz.size(), 18u);  // header + trailer
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_EQ(static_cast<unsigned char>(gz[2]), 8);  // deflate
  std::string back = "stale";
  const absl::Status status = gzipDecompress(gz, back, kNoLimit);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(back, data);
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, GzipRoundTrip,
    ::testing::Values(RoundTripCase{"Empty", ""}, RoundTripCase{"OneByte", "x"},
                      RoundTripCase{"Small", "hello, collector"},
                      RoundTripCase{"Binary", std::string("\0\x01\xff\x80", 4)},
                      RoundTripCase{"Random1MiB", randomBytes(1 << 20, 1)},
                      RoundTripCase{"Text1MiB", spanLikeText(1 << 20)},
                      RoundTripCase{"Zeros1MiB", std::string(1 << 20, '\0')}),
    [](const ::testing::TestParamInfo<RoundTripCase>& p) { return p.param.name; });

TEST(GzipCompressor, ReusedCompressorGivesTheSameBytesAsAFreshOne) {
  GzipCompressor reused;
  std::string out;
  ASSERT_TRUE(reused.compress(randomBytes(100000, 2), out).ok());
  ASSERT_TRUE(reused.compress("first", out).ok());
  const std::string text = spanLikeText(50000);
  ASSERT_TRUE(reused.compress(text, out).ok());
  EXPECT_EQ(out, compressed(text));
  ASSERT_TRUE(reused.compress("", out).ok());
  EXPECT_EQ(out, compressed(""));
}

TEST(GzipCompressor, ReplacesTheOutput) {
  GzipCompressor compressor;
  std::string out(1000, 'z');
  ASSERT_TRUE(compressor.compress("abc", out).ok());
  std::string back;
  ASSERT_TRUE(gzipDecompress(out, back, kNoLimit).ok());
  EXPECT_EQ(back, "abc");
}

TEST(GzipCompressor, CompressesText) {
  const std::string text = spanLikeText(1 << 20);
  EXPECT_LT(compressed(text).size(), text.size() / 4);
}

TEST(GzipCompressor, EveryLevelRoundTrips) {
  const std::string text = spanLikeText(200000);
  for (int level : {0, 1, 5, 9, -1}) {
    SCOPED_TRACE(level);
    std::string back;
    ASSERT_TRUE(gzipDecompress(compressed(text, level), back, kNoLimit).ok());
    EXPECT_EQ(back, text);
  }
}

TEST(GzipCompressor, InvalidLevelIsAnError) {
  GzipCompressor compressor(42);
  std::string out = "x";
  const absl::Status status = compressor.compress("abc", out);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("42"), std::string_view::npos) << status;
  EXPECT_TRUE(out.empty());
}

// ---------------------------------------------------------------------------------------------
// Interoperability with the gzip program

TEST(GzipInterop, GzipProgramDecompressesOurOutput) {
  ScratchDir dir{"tracecar-gzip-test"};
  ASSERT_FALSE(dir.path().empty());
  for (const std::string& data : {std::string(), spanLikeText(300000), randomBytes(1 << 20, 3)}) {
    writeFile(dir.file("ours.gz"), compressed(data));
    ASSERT_EQ(run("gzip -dc " + dir.file("ours.gz") + " > " +
                  dir.file("plain")),
              0);
    EXPECT_EQ(readFile(dir.file("plain")), data);
  }
}

TEST(GzipInterop, GzipProgramReadsOurConcatenatedMembers) {
  ScratchDir dir{"tracecar-gzip-test"};
  ASSERT_FALSE(dir.path().empty());
  writeFile(dir.file("two.gz"), compressed("first member\n") + compressed("second member\n"));
  ASSERT_EQ(run("gzip -dc " + dir.file("two.gz") + " > " +
                dir.file("plain")),
            0);
  EXPECT_EQ(readFile(dir.file("plain")), "first member\nsecond member\n");
}

TEST(GzipInterop, WeDecompressWhatTheGzipProgramWrites) {
  ScratchDir dir{"tracecar-gzip-test"};
  ASSERT_FALSE(dir.path().empty());
  const std::string data = spanLikeText(500000) + randomBytes(100000, 4);
  writeFile(dir.file("plain"), data);
  for (const char* flags : {"-1", "-9"}) {
    SCOPED_TRACE(flags);
    // gzip writes the file name into the header (FNAME): the header parser must skip it.
    ASSERT_EQ(run(std::string("gzip ") + flags + " -c " + dir.file("plain") +
                  " > " + dir.file("theirs.gz")),
              0);
    std::string back;
    const absl::Status status = gzipDecompress(readFile(dir.file("theirs.gz")), back, kNoLimit);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(back, data);
  }
}

TEST(GzipInterop, WeDecompressOursFollowedByTheirs) {
  ScratchDir dir{"tracecar-gzip-test"};
  ASSERT_FALSE(dir.path().empty());
  writeFile(dir.file("plain"), "from gzip");
  ASSERT_EQ(run("gzip -c -n " + dir.file("plain") + " > " +
                dir.file("theirs.gz")),
            0);
  std::string back;
  ASSERT_TRUE(
      gzipDecompress(compressed("from us, ") + readFile(dir.file("theirs.gz")), back, kNoLimit)
          .ok());
  EXPECT_EQ(back, "from us, from gzip");
}

// ---------------------------------------------------------------------------------------------
// Limits and bad input

TEST(GzipDecompress, OutputExactlyAtTheLimitIsAccepted) {
  const std::string data(1 << 20, 'a');
  std::string back;
  const absl::Status status = gzipDecompress(compressed(data), back, data.size());
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(back, data);
}

TEST(GzipDecompress, OutputOneBytePastTheLimitIsRejected) {
  const std::string data(1 << 20, 'a');
  std::string back;
  const absl::Status status = gzipDecompress(compressed(data), back, data.size() - 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_TRUE(back.empty());
}

TEST(GzipDecompress, LimitCountsAllMembers) {
  const std::string two = compressed("12345") + compressed("67890");
  std::string back;
  EXPECT_TRUE(gzipDecompress(two, back, 10).ok());
  EXPECT_EQ(back, "1234567890");
  EXPECT_EQ(gzipDecompress(two, back, 9).code(), absl::StatusCode::kResourceExhausted);
}

TEST(GzipDecompress, ZeroLimitAcceptsOnlyEmptyContent) {
  std::string back;
  EXPECT_TRUE(gzipDecompress(compressed(""), back, 0).ok());
  EXPECT_TRUE(back.empty());
  EXPECT_EQ(gzipDecompress(compressed("x"), back, 0).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(GzipDecompress, BombStopsAtTheLimitWithoutInflatingEverything) {
  const std::string bomb = compressed(std::string(size_t{64} << 20, '\0'), 9);
  ASSERT_LT(bomb.size(), 100000u);
  std::string back;
  const absl::Status status = gzipDecompress(bomb, back, 1 << 20);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("1048576"), std::string_view::npos) << status;
  EXPECT_LE(back.capacity(), size_t{4} << 20);
}

TEST(GzipDecompress, EveryTruncationIsAnError) {
  const std::string gz = compressed(spanLikeText(3000));
  for (size_t n = 1; n < gz.size(); ++n) {
    std::string back;
    const absl::Status status = gzipDecompress(std::string_view(gz).substr(0, n), back, kNoLimit);
    ASSERT_FALSE(status.ok()) << "prefix of " << n << " of " << gz.size() << " bytes";
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(GzipDecompress, TruncationSaysSo) {
  const std::string gz = compressed("hello world");
  std::string back;
  const absl::Status status = gzipDecompress(gz.substr(0, gz.size() - 4), back, kNoLimit);
  EXPECT_NE(status.message().find("truncated"), std::string_view::npos) << status;
}

TEST(GzipDecompress, TruncatedSecondMemberIsAnError) {
  const std::string second = compressed("second");
  std::string back;
  EXPECT_FALSE(
      gzipDecompress(compressed("first") + second.substr(0, 12), back, kNoLimit).ok());
}

struct BadInput {
  const char* name;
  std::string data;
};

class GzipDecompressBad : public ::testing::TestWithParam<BadInput> {};

TEST_P(GzipDecompressBad, IsAnInvalidArgument) {
  std::string back = "stale";
  const absl::Status status = gzipDecompress(GetParam().data, back, kNoLimit);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(back.empty());
}

std::string withByteFlipped(std::string s, size_t from_end) {
  s[s.size() - from_end] = static_cast<char>(s[s.size() - from_end] ^ 0x55);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, GzipDecompressBad,
    ::testing::Values(
        BadInput{"Empty", ""}, BadInput{"PlainText", "this is not gzip at all"},
        BadInput{"BadMagic", std::string("\x1f\x8c\x08\x00\x00\x00\x00\x00\x00\x03", 10)},
        BadInput{"BadCrc", withByteFlipped(compressed("checksummed"), 8)},
        BadInput{"BadLength", withByteFlipped(compressed("length"), 1)},
        BadInput{"TrailingGarbage", compressed("ok") + "garbage"},
        BadInput{"TrailingZeros", compressed("ok") + std::string(16, '\0')},
        BadInput{"HeaderOnly", compressed("abc").substr(0, 10)}),
    [](const ::testing::TestParamInfo<BadInput>& p) { return p.param.name; });

}  // namespace
}  // namespace tracecar::exporter
