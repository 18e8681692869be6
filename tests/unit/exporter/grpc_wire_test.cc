#include <gtest/gtest.h>

#include <string>

#include "exporter/otlp_grpc_wire.h"

namespace tracecar::exporter {
namespace {

using std::chrono::milliseconds;

TEST(GrpcWire, LengthPrefixedMessage) {
  std::string out;
  appendGrpcMessage("abc", false, out);
  EXPECT_EQ(out, std::string("\x00\x00\x00\x00\x03" "abc", 8));
  out.clear();
  appendGrpcMessage(std::string(300, 'x'), true, out);
  EXPECT_EQ(out.substr(0, 5), std::string("\x01\x00\x00\x01\x2c", 5));

  bool compressed = false;
  std::string_view message;
  ASSERT_TRUE(readGrpcMessage(out, compressed, message));
  EXPECT_TRUE(compressed);
  EXPECT_EQ(message.size(), 300u);
  EXPECT_FALSE(readGrpcMessage(out.substr(0, 200), compressed, message));  // truncated
  EXPECT_FALSE(readGrpcMessage(out + "y", compressed, message));          // two messages?
  EXPECT_FALSE(readGrpcMessage(std::string("\x02\x00\x00\x00\x00", 5), compressed, message));
  EXPECT_TRUE(readGrpcMessage(std::string("\x00\x00\x00\x00\x00", 5), compressed, message));
  EXPECT_TRUE(message.empty());
}

TEST(GrpcWire, TimeoutFitsEightDigits) {
  EXPECT_EQ(grpcTimeout(milliseconds(0)), "0m");
  EXPECT_EQ(grpcTimeout(milliseconds(2500)), "2500m");
  EXPECT_EQ(grpcTimeout(milliseconds(99999999)), "99999999m");
  EXPECT_EQ(grpcTimeout(milliseconds(100000000)), "100000S");
  EXPECT_EQ(grpcTimeout(milliseconds(-5)), "0m");
}

TEST(GrpcWire, MessageIsPercentDecoded) {
  EXPECT_EQ(grpcMessageDecode("bad%20span%3A%25"), "bad span:%");
  EXPECT_EQ(grpcMessageDecode("caf%C3%A9"), "caf\xC3\xA9");
  EXPECT_EQ(grpcMessageDecode("100%"), "100%");    // malformed escapes stay
  EXPECT_EQ(grpcMessageDecode("%zz%4"), "%zz%4");
}

// google.rpc.Status{code: 8, message: "slow", details: [Any{RetryInfo{1 s 2 ns}}]}, base64
// without padding as gRPC sends -bin values.
TEST(GrpcWire, StatusDetailsWithRetryInfo) {
  const std::string duration = std::string("\x08\x01\x10\x02", 4);
  const std::string retry_info = "\x0a" + std::string(1, static_cast<char>(duration.size())) + duration;
  const std::string type_url = "type.googleapis.com/google.rpc.RetryInfo";
  const std::string any = "\x0a" + std::string(1, static_cast<char>(type_url.size())) + type_url +
                          "\x12" + std::string(1, static_cast<char>(retry_info.size())) +
                          retry_info;
  const std::string status = std::string("\x08\x08\x12\x04slow", 8) + "\x1a" +
                             std::string(1, static_cast<char>(any.size())) + any;
  // Base64 of status, computed by hand-rolled encoder below.
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : status) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      b64 += kAlphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) b64 += kAlphabet[(bits << (6 - count)) & 63];

  const auto details = parseGrpcStatusDetails(b64);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->code, 8);
  EXPECT_EQ(details->message, "slow");
  ASSERT_TRUE(details->retry_delay.has_value());
  EXPECT_EQ(*details->retry_delay, milliseconds(1001));  // rounded up
  std::string padded = b64;
  while (padded.size() % 4 != 0) padded += '=';
  EXPECT_TRUE(parseGrpcStatusDetails(padded).has_value());
  EXPECT_FALSE(parseGrpcStatusDetails("!!!").has_value());
}

TEST(GrpcWire, StatusDetailsWithoutRetryInfo) {
  // Status{code: 8, message: "q"} = 08 08 12 01 71 -> "CAgSAXE"
  const auto details = parseGrpcStatusDetails("CAgSAXE");
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->code, 8);
  EXPECT_EQ(details->message, "q");
  EXPECT_FALSE(details->retry_delay.has_value());
}

TEST(GrpcWire, OtlpRetryRules) {
  for (int code : {1, 4, 10, 11, 14, 15}) {
    EXPECT_EQ(classifyOtlpGrpcStatus(code, false), GrpcDisposition::kRetryable) << code;
  }
  for (int code : {2, 3, 5, 6, 7, 9, 12, 13, 16, 99}) {
    EXPECT_EQ(classifyOtlpGrpcStatus(code, true), GrpcDisposition::kNonRetryable) << code;
  }
  EXPECT_EQ(classifyOtlpGrpcStatus(8, false), GrpcDisposition::kNonRetryable);
  EXPECT_EQ(classifyOtlpGrpcStatus(8, true), GrpcDisposition::kRetryable);
  EXPECT_EQ(classifyOtlpGrpcStatus(0, false), GrpcDisposition::kSuccess);
  EXPECT_EQ(grpcCodeFromHttpStatus(503), 14);
  EXPECT_EQ(grpcCodeFromHttpStatus(401), 16);
  EXPECT_EQ(grpcCodeFromHttpStatus(404), 12);
  EXPECT_EQ(grpcCodeFromHttpStatus(500), 2);
  EXPECT_EQ(grpcCodeName(14), "UNAVAILABLE");
}

}  // namespace
}  // namespace tracecar::exporter
