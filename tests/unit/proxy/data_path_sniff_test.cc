#include "proxy/sniff.h"

#include <gtest/gtest.h>

#include <string>

namespace tracecar::proxy {
namespace {

constexpr size_t kMaxLine = 8192;

std::optional<SniffedProtocol> sniff(std::string_view bytes) {
  return sniffProtocol(bytes, kMaxLine);
}

TEST(SniffProtocol, RequestLineIsHttp1) {
  EXPECT_EQ(sniff("GET / HTTP/1.1\r\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("POST /x HTTP/1.0\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), SniffedProtocol::kHttp1);
  // Versions the parser refuses are still HTTP: it answers them with 400.
  EXPECT_EQ(sniff("GET / HTTP/2.0\r\n"), SniffedProtocol::kHttp1);
  // So are methods it refuses (lowercase ones): never an opaque tunnel past its checks.
  EXPECT_EQ(sniff("get / HTTP/1.1\r\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("Get /x HTTP/1.0\r\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("m-search * HTTP/1.1\r\n"), SniffedProtocol::kHttp1);
}

// RFC 9112 section 2.2: empty lines before a request line are ignored by servers (and by the
// parser), and a version in lowercase is a request the parser refuses: neither passes through
// as an opaque tunnel.
TEST(SniffProtocol, EmptyLinesBeforeAndAnyCaseVersionAreHttp1) {
  EXPECT_EQ(sniff("\r\nGET / HTTP/1.1\r\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("\n\r\n\nPOST /x HTTP/1.1\r\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("\r\n"), std::nullopt);
  EXPECT_EQ(sniff("\r\nGE"), std::nullopt);
  EXPECT_EQ(sniff(std::string(kMaxLine, '\n')), std::nullopt);
  EXPECT_EQ(sniff(std::string(kMaxLine + 1, '\n')), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("\r\nSET key value\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniff("GET / http/1.1\r\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("GET / Http/1.0\r\n"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniff("GET / HTTPS/1.1\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniffFinal("\r\n"), SniffedProtocol::kHttp1);
}

TEST(SniffProtocol, PartOfARequestLineNeedsMore) {
  EXPECT_EQ(sniff("G"), std::nullopt);
  EXPECT_EQ(sniff("GET"), std::nullopt);
  EXPECT_EQ(sniff("GET /users/1 HT"), std::nullopt);
}

TEST(SniffProtocol, LongRequestLineWithoutItsEndIsTakenForHttpAtTheLimit) {
  const std::string line = "GET /" + std::string(kMaxLine, 'a');
  EXPECT_EQ(sniff(line.substr(0, kMaxLine)), std::nullopt);
  EXPECT_EQ(sniff(line.substr(0, kMaxLine + 1)), SniffedProtocol::kHttp1);
}

TEST(SniffProtocol, H2PrefaceIsCheckedBeforeTheRequestLine) {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  EXPECT_EQ(sniff(preface), SniffedProtocol::kH2);
  EXPECT_EQ(sniff(preface + "\x00\x00\x00\x04"), SniffedProtocol::kH2);
  EXPECT_EQ(sniff(preface.substr(0, 16)), std::nullopt);
  // "PRI" followed by something else is a request line like any other.
  EXPECT_EQ(sniff("PRICE / HTTP/1.1\r\n"), SniffedProtocol::kHttp1);
}

TEST(SniffProtocol, TlsRecordHeader) {
  EXPECT_EQ(sniff(std::string("\x16\x03\x01\x02\x00", 5)), SniffedProtocol::kTls);
  EXPECT_EQ(sniff("\x16"), std::nullopt);
  EXPECT_EQ(sniff("\x16\x02"), SniffedProtocol::kOther);
}

TEST(SniffProtocol, EverythingElseIsOther) {
  EXPECT_EQ(sniff(std::string("\x00\x01", 2)), SniffedProtocol::kOther);
  EXPECT_EQ(sniff("SET key value\r\n"), SniffedProtocol::kOther);  // Redis inline
  EXPECT_EQ(sniff("get key\r\n"), SniffedProtocol::kOther);        // memcached
  EXPECT_EQ(sniff("set k 0 0 5\r\nhello\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniff("get /x HTTP\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniff("*1\r\n$4\r\nPING\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniff("GET /\r\n"), SniffedProtocol::kOther);  // HTTP/0.9
  EXPECT_EQ(sniff(" GET / HTTP/1.1\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniff(std::string(21, 'A') + " / HTTP/1.1\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniff(std::string(20, 'A') + " / HTTP/1.1\r\n"), SniffedProtocol::kHttp1);
}

TEST(SniffFinal, PartialHttpStaysHttpAnythingElseIsOther) {
  EXPECT_EQ(sniffFinal("GE"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniffFinal("GET /slow"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniffFinal("PRI * HTTP/2"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniffFinal("\x16"), SniffedProtocol::kOther);
  // A token that stopped short may be a request line (lowercase or not) that never ended: the
  // parser answers it, rather than a tunnel taking the rest past the data path.
  EXPECT_EQ(sniffFinal("hello"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniffFinal("get /x HTTP/1."), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniffFinal("hello\r\n"), SniffedProtocol::kOther);
  EXPECT_EQ(sniffFinal("hello world"), SniffedProtocol::kHttp1);
  EXPECT_EQ(sniffFinal("{\"a\""), SniffedProtocol::kOther);
}

TEST(SniffedProtocolName, LabelsOnMetrics) {
  EXPECT_EQ(sniffedProtocolName(SniffedProtocol::kHttp1), "http1");
  EXPECT_EQ(sniffedProtocolName(SniffedProtocol::kH2), "h2");
  EXPECT_EQ(sniffedProtocolName(SniffedProtocol::kTls), "tls");
  EXPECT_EQ(sniffedProtocolName(SniffedProtocol::kServerFirst), "server_first");
  EXPECT_EQ(sniffedProtocolName(SniffedProtocol::kOther), "other");
}

}  // namespace
}  // namespace tracecar::proxy
