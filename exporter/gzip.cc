#include "exporter/gzip.h"

#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <limits>
#include <new>

namespace tracecar::exporter {
namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip (not zlib) wrapper
constexpr int kMemLevel = 8;              // zlib's default
constexpr size_t kMaxChunk = std::numeric_limits<uInt>::max();
constexpr size_t kFirstOutputSize = 16 * 1024;

const Bytef* inputBytes(std::string_view in) noexcept {
  return reinterpret_cast<const Bytef*>(in.data());
}

Bytef* outputBytes(std::string& out, size_t offset) noexcept {
  return reinterpret_cast<Bytef*>(out.data() + offset);
}

// Hands zlib the next piece of input once it has used the last one (avail_in is 32-bit).
void feed(z_stream& stream, size_t& input_left) noexcept {
  if (stream.avail_in != 0 || input_left == 0) return;
  const size_t chunk = std::min(input_left, kMaxChunk);
  stream.avail_in = static_cast<uInt>(chunk);
  input_left -= chunk;
}

std::string zlibReason(const z_stream& stream, int rc) {
  return stream.msg != nullptr ? std::string(stream.msg) : std::string(zError(rc));
}

}  // namespace

GzipCompressor::GzipCompressor(int level) : stream_(new z_stream{}), level_(level) {
  if (deflateInit2(stream_, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    delete stream_;
    stream_ = nullptr;  // compress() reports it
  }
}

GzipCompressor::~GzipCompressor() {
  if (stream_ != nullptr) {
    deflateEnd(stream_);
    delete stream_;
  }
}

absl::Status GzipCompressor::compress(std::string_view in, std::string& out) noexcept {
  try {
    out.clear();
    if (stream_ == nullptr) {
      return absl::InternalError("gzip: zlib could not be initialised with level " +
                                 std::to_string(level_));
    }
    if (deflateReset(stream_) != Z_OK) return absl::InternalError("gzip: deflateReset failed");
    // deflateBound counts the gzip header and trailer: one pass is enough unless the input is
    // larger than zlib's 32-bit counters.
    out.resize(deflateBound(stream_, static_cast<uLong>(in.size())));
    stream_->next_in = inputBytes(in);
    stream_->avail_in = 0;
    size_t input_left = in.size();
    size_t produced = 0;
    while (true) {
      feed(*stream_, input_left);
      if (produced == out.size()) out.resize(out.size() * 2 + 64);
      const size_t space = std::min(out.size() - produced, kMaxChunk);
      stream_->next_out = outputBytes(out, produced);
      stream_->avail_out = static_cast<uInt>(space);
      const int flush = input_left == 0 ? Z_FINISH : Z_NO_FLUSH;
      const int rc = deflate(stream_, flush);
      produced += space - stream_->avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        out.clear();
        return absl::InternalError("gzip: deflate failed: " + zlibReason(*stream_, rc));
      }
    }
    out.resize(produced);
    return absl::OkStatus();
  } catch (const std::bad_alloc&) {
    out.clear();
    return absl::ResourceExhaustedError("gzip: out of memory");
  }
}

absl::Status gzipDecompress(std::string_view in, std::string& out, size_t max_output) {
  out.clear();
  if (in.empty()) return absl::InvalidArgumentError("gzip: the input is empty");
  z_stream stream{};
  const int init = inflateInit2(&stream, kGzipWindowBits);
  if (init != Z_OK) {
    return init == Z_MEM_ERROR ? absl::ResourceExhaustedError("gzip: out of memory")
                               : absl::InternalError("gzip: inflateInit2 failed");
  }
  struct End {
    z_stream* stream;
    ~End() { inflateEnd(stream); }
  } end{&stream};

  // Room for one byte past the limit: producing it is what proves the limit is exceeded, while
  // output of exactly max_output can still reach its trailer.
  const size_t room = max_output == std::numeric_limits<size_t>::max() ? max_output : max_output + 1;
  const auto tooLarge = [max_output] {
    return absl::ResourceExhaustedError("gzip: the decompressed data exceeds the limit of " +
                                        std::to_string(max_output) + " bytes");
  };
  try {
    stream.next_in = inputBytes(in);
    size_t input_left = in.size();
    size_t produced = 0;
    int member = 1;
    while (true) {
      feed(stream, input_left);
      if (produced == out.size()) {
        if (out.size() >= room) return tooLarge();
        const size_t guess = std::max(kFirstOutputSize, std::min(in.size(), room / 4) * 4);
        out.resize(std::min(room, out.empty() ? guess : out.size() * 2));
      }
      const size_t space = std::min(out.size() - produced, kMaxChunk);
      stream.next_out = outputBytes(out, produced);
      stream.avail_out = static_cast<uInt>(space);
      const int rc = inflate(&stream, Z_NO_FLUSH);
      produced += space - stream.avail_out;
      if (produced > max_output) {
        out.clear();
        return tooLarge();
      }
      if (rc == Z_STREAM_END) {
        if (stream.avail_in == 0 && input_left == 0) break;
        if (inflateReset(&stream) != Z_OK) return absl::InternalError("gzip: inflateReset failed");
        ++member;  // gzip allows members back to back (RFC 1952 2.2)
        continue;
      }
      if (rc == Z_OK) continue;
      if (rc == Z_BUF_ERROR) {
        // No progress: either the output was full (it grows above) or the input ran out.
        if (stream.avail_in == 0 && input_left == 0 && stream.avail_out != 0) {
          out.clear();
          return absl::InvalidArgumentError("gzip: the input is truncated (member " +
                                            std::to_string(member) + " does not end)");
        }
        continue;
      }
      out.clear();
      if (rc == Z_MEM_ERROR) return absl::ResourceExhaustedError("gzip: out of memory");
      if (rc == Z_NEED_DICT) {
        return absl::InvalidArgumentError("gzip: member " + std::to_string(member) +
                                          " needs a preset dictionary");
      }
      return absl::InvalidArgumentError("gzip: invalid data in member " +
                                        std::to_string(member) + ": " + zlibReason(stream, rc));
    }
    out.resize(produced);
    return absl::OkStatus();
  } catch (const std::bad_alloc&) {
    out.clear();
    return absl::ResourceExhaustedError("gzip: out of memory");
  }
}

}  // namespace tracecar::exporter
