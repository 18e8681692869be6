#pragma once

#include <absl/status/status.h>

#include <cstddef>
#include <string>
#include <string_view>

typedef struct z_stream_s z_stream;

namespace tracecar::exporter {

// gzip (RFC 1952) compression for request bodies, reusing one zlib stream across calls.
class GzipCompressor {
 public:
  explicit GzipCompressor(int level = 6);
  ~GzipCompressor();
  GzipCompressor(const GzipCompressor&) = delete;
  GzipCompressor& operator=(const GzipCompressor&) = delete;

  // Replaces out with the gzip member holding in.
  absl::Status compress(std::string_view in, std::string& out) noexcept;

 private:
  z_stream* stream_;
  int level_;
};

// Replaces out with the decompressed contents of in (one or more gzip members). An error when
// in is not valid gzip or the result would exceed max_output bytes (a decompression bomb).
absl::Status gzipDecompress(std::string_view in, std::string& out, size_t max_output);

}  // namespace tracecar::exporter
