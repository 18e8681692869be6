#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/header_map.h"

namespace tracecar::http {

struct Http1Limits {
  size_t max_header_bytes = 60 * 1024;  // start line + header lines (and trailer lines)
  size_t max_header_count = 100;        // header fields (and trailer fields)
  size_t max_uri_length = 8 * 1024;     // request target
};

// Why a message could not be parsed. A proxy answers a request error with the status in the
// comment and a response error with 502.
enum class Http1Error : uint8_t {
  kNone,
  kHeadersTooLarge,  // 431: over max_header_bytes
  kTooManyHeaders,   // 431: over max_header_count
  kUriTooLong,       // 414: over max_uri_length
  kInvalid,          // 400: anything malformed (bad characters, obs-fold, bare CR or LF,
                     //      conflicting Content-Length, Content-Length with Transfer-Encoding,
                     //      bad chunk framing, bad version...)
  kUnexpectedEof,    // the peer closed in the middle of a message
};
std::string_view http1ErrorName(Http1Error error) noexcept;  // "headers_too_large", ...

// The start line and header fields of one message.
struct Http1Head {
  std::string method;  // requests: as received (e.g. "GET", "PURGE")
  std::string target;  // requests: request-target as received (origin, absolute, authority or *)
  int status = 0;      // responses
  std::string reason;  // responses
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  HeaderMap headers;
  std::optional<uint64_t> content_length;
  bool chunked = false;  // Transfer-Encoding ends in chunked
  // The connection may carry another message after this one, as llhttp_should_keep_alive
  // reads the head: HTTP/1.1 without Connection: close, HTTP/1.0 with keep-alive, and a known
  // body length for responses (a response to HEAD without one reads false here).
  bool keep_alive = false;
  // What the head alone says of the connection, whatever the body: HTTP/1.1 without
  // Connection: close, HTTP/1.0 with keep-alive. For a response without a body (to HEAD; 204,
  // 304), where keep_alive's body-length condition does not apply. Read from the head as
  // received, before a handler strips its Connection field.
  bool reusable = false;
  bool upgrade = false;  // request with Upgrade (or CONNECT) / 101 or 2xx-to-CONNECT answer
  // Bytes of the start line and header lines as received, every CRLF and the final empty line
  // included (and empty lines before the start line, which count toward the limit too).
  size_t header_bytes = 0;
};

// Events of an Http1Parser, in order: onHead, onBody*, onTrailers?, onMessageComplete, and again
// for the next message on the connection. A handler may call pause() from any event; parse()
// returns right after that event (an onMessageComplete a paused onHead or onTrailers still owes
// comes first on the next parse()).
class Http1ParserCallbacks {
 public:
  virtual ~Http1ParserCallbacks() = default;
  // The head is complete. A response parser's handler returns true when this response has no
  // body whatever its headers say (it answers a HEAD request); 1xx, 204 and 304 are known to the
  // parser. A request parser ignores the result.
  //
  // The parser cannot know that a response answers CONNECT: for a 2xx answer to CONNECT the
  // response handler sets head.upgrade = true before returning. The response then has no body
  // and parsing stops after its onMessageComplete, as after a 101.
  //
  // head stays valid until onMessageComplete returns; move from it to keep it longer.
  virtual bool onHead(Http1Head& head) = 0;
  virtual void onBody(std::string_view data) = 0;
  // Trailer fields of a chunked message (only when there are some).
  virtual void onTrailers(HeaderMap& trailers) = 0;
  virtual void onMessageComplete() = 0;
};

// HTTP/1.0 and 1.1 over llhttp, strict (no lenient flags): bytes in, events out; no I/O. Limits
// are enforced while the head arrives, so an oversized head costs at most the limit in memory.
//
// Strictness beyond llhttp's own: every byte of a head, a trailer section and the chunk framing
// is checked before llhttp sees it (bare CR or LF, obs-fold, field-name and field-value
// characters, whitespace before a colon, the start line's shape, HTTP/1.0 and 1.1 only, status
// 100-599, CRLF after chunk data), Transfer-Encoding is refused in HTTP/1.0 messages and
// Content-Length or Transfer-Encoding in trailers, and a duplicate Content-Length is refused even
// when both values agree. A method is 1 to 20 of A-Z, '-' and '_' (http::isMethodChar; llhttp
// knows a fixed list and is shown GET for any other, see Hole); chunk extensions are checked here
// and not passed on.
class Http1Parser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };

  Http1Parser(Kind kind, Http1ParserCallbacks& callbacks, const Http1Limits& limits = {});
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  // Parses data and returns how many bytes were consumed. Fewer than data.size() when parsing
  // stopped: an error (error() != kNone), pause() called from a callback, or a message completed
  // that switches protocols (upgraded(): the rest belongs to the tunnel). After a pause, call
  // resume() and parse the unconsumed rest again, even when it is empty (an onMessageComplete
  // due right after the last body byte comes then).
  //
  // After a message that does not keep the connection alive (Connection: close, HTTP/1.0
  // without keep-alive, close-delimited body), further bytes are consumed and ignored.
  size_t parse(std::string_view data) noexcept;
  // The peer closed its side: completes a close-delimited response body; sets kUnexpectedEof
  // when a message was in progress. Nothing more may be parsed afterwards.
  void finish() noexcept;

  void pause() noexcept;
  void resume() noexcept;
  bool paused() const noexcept;
  // A request with Upgrade (listed in Connection) or CONNECT, a 101 response, or a response the
  // handler marked as a CONNECT 2xx has completed: parsing has stopped for good...
  bool upgraded() const noexcept;
  // The completed message ends the connection (no keep-alive, also a Connection: close that
  // came in its trailers): further bytes are ignored. Set before onMessageComplete.
  bool closed() const noexcept;
  // ...unless the peer refused the upgrade (a request parser whose request was not answered
  // with 101 or a CONNECT 2xx): then this parses the bytes after it as HTTP/1 again.
  void resumeAfterUpgrade() noexcept;

  // A head that arrives whole in one parse() and needs none of llhttp's special cases (a common
  // method or a final status, HTTP/1.1, a Content-Length body or none, no Transfer-Encoding,
  // Upgrade, or Connection other than close or keep-alive) is read here, with its body, without
  // llhttp; any other goes through llhttp. Both give the same events, the same errors and the
  // same consumed counts (the parser's tests and fuzzer compare them). On by default; off sends
  // every message through llhttp.
  void setDirectHeads(bool on) noexcept { direct_heads_ = on; }

  Http1Error error() const noexcept { return error_; }
  // A short human reason for the error, e.g. "Content-Length with Transfer-Encoding".
  std::string_view errorReason() const noexcept { return error_reason_; }
  // Is a message between its first byte and onMessageComplete?
  bool inMessage() const noexcept;

 private:
  struct Glue;  // llhttp's callbacks

  // Where the byte scan is. It runs ahead of llhttp over the same bytes, stops where it needs
  // llhttp's view of the head (how the body is framed) and at the end of each message.
  enum class Scan : uint8_t {
    // Before a message: empty lines are allowed.
    kMessageStart,
    kLeadingLf,
    // Request line, status line.
    kMethod,
    kTarget,
    kRequestVersion,
    kResponseVersion,
    kStatus,
    kReason,
    kStartLineLf,
    // Field lines, of the head or of trailers.
    kLineStart,
    kName,
    kValue,
    kLineLf,
    kEndLf,
    // Until llhttp has read the head and framed the body.
    kHeadDone,
    // Body framing.
    kBodyLength,
    kBodyEof,
    kChunkSize,
    // A chunk extension: its name, "=", a token value, a quoted-string value, a quoted pair,
    // after the closing quote.
    kChunkExtName,
    kChunkExtValue,
    kChunkExtToken,
    kChunkExtQuoted,
    kChunkExtQuotedPair,
    kChunkExtQuoteEnd,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    // Until llhttp completes the message.
    kMessageDone,
    kFailed,
  };

  size_t scan(const char* data, size_t size) noexcept;
  // The scan's fast path, from data[i] at the start of a message or of a field line: takes whole
  // lines that are complete and well-formed, exactly as the byte-by-byte scan would, and returns
  // where it stopped.
  size_t scanLines(const char* data, size_t i, size_t size) noexcept;
  size_t scanFailed(size_t at, Http1Error error, std::string_view reason) noexcept;
  void startSection(bool trailers) noexcept;
  void execute(const char* data, size_t size) noexcept;

  // A run of the stream that llhttp is not shown as it is: a request's method (llhttp knows a
  // fixed list; it is shown the method once the method is whole when it knows it, GET when not,
  // and head_.method is what came) and chunk extensions (not shown at all; the scan checks
  // them, nothing reads them). At most one at a time: the scan stops at the next one until
  // llhttp is past the last.
  enum class Hole : uint8_t { kNone, kMethod, kChunkExt };
  static constexpr uint64_t kOpenHole = ~uint64_t{0};
  // The scan, at stream offset at: false while the last hole is still ahead of llhttp.
  bool startHole(Hole kind, uint64_t at) noexcept {
    if (hole_ != Hole::kNone) return false;
    hole_ = kind;
    hole_begin_ = at;
    hole_end_ = kOpenHole;
    return true;
  }
  // Hands llhttp the next of data (at stream offset consumed_), up to a hole, or passes over
  // the hole's bytes (keeping a method's) and shows llhttp what stands for them once it ends.
  void feed(const char* data, size_t size) noexcept;
  void show(std::string_view bytes) noexcept;
  // llhttp stopped with status: the message is invalid, for llhttp's reason.
  void failParse(llhttp_errno_t status) noexcept;
  void fail(Http1Error error, std::string_view reason) noexcept;
  int failCallback(Http1Error error, const char* reason) noexcept;
  void completeMessage() noexcept;

  // Messages read without llhttp (http1_parser_direct.cc). readDirectHead takes a whole,
  // checked head when it can (then the message is direct_) and hands it to onHead;
  // deliverDirect passes body bytes the scan has checked, then completes the message.
  bool readDirectHead(std::string_view head) noexcept;
  void deliverDirect(const char* data, size_t size) noexcept;
  void completeDirect() noexcept;

  // llhttp events.
  void beginMessage() noexcept;
  int commitField() noexcept;
  int headersComplete() noexcept;
  int messageComplete() noexcept;

  llhttp_t parser_{};
  Kind kind_;
  Http1ParserCallbacks& callbacks_;
  Http1Limits limits_;
  Http1Error error_ = Http1Error::kNone;
  std::string_view error_reason_;  // always static text

  // The message llhttp is in.
  Http1Head head_;
  HeaderMap trailers_;
  // The name or value of the field being received. llhttp hands it over in pieces (more than
  // one only when it spans parse() calls): a single piece is viewed where it lies, valid while
  // the llhttp_execute call that delivered it runs; a second piece, or the end of that call,
  // copies it.
  class FieldText {
   public:
    void add(const char* at, size_t length) {
      if (owned_.empty() && input_.empty()) {
        input_ = std::string_view(at, length);
        return;
      }
      keep();
      owned_.append(at, length);
    }
    void keep() {
      if (input_.empty()) return;
      owned_.assign(input_);
      input_ = {};
    }
    std::string_view text() const noexcept { return input_.empty() ? owned_ : input_; }
    bool empty() const noexcept { return input_.empty() && owned_.empty(); }
    void clear() noexcept {
      owned_.clear();
      input_ = {};
    }

   private:
    std::string owned_;
    std::string_view input_;
  };
  FieldText field_name_;
  FieldText field_value_;
  bool in_trailers_ = false;
  bool upgrade_after_ = false;       // this message hands the connection over when complete
  bool close_after_ = false;         // this message ends the connection
  bool message_ended_ = false;       // llhttp stopped at the end of a message: reset it to go on
  bool completion_pending_ = false;  // onMessageComplete owed: the handler paused before it

  // The message being read without llhttp.
  bool direct_heads_ = true;
  bool direct_ = false;  // its body bytes still to come are the scan's remaining_

  // The connection.
  bool paused_ = false;
  bool resume_pending_ = false;  // llhttp stopped mid-message: run it on the next parse()
  bool upgraded_ = false;
  bool closed_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  bool in_message_ = false;
  uint64_t consumed_ = 0;  // stream offset up to which llhttp has parsed
  uint64_t scanned_ = 0;   // stream offset up to which the scan has checked (>= consumed_)

  Hole hole_ = Hole::kNone;
  uint64_t hole_begin_ = 0;         // stream offsets
  uint64_t hole_end_ = kOpenHole;   // open while the scan is in it
  std::string method_;              // the method of the request llhttp is in

  // The scan.
  Scan scan_ = Scan::kMessageStart;
  bool scan_trailers_ = false;
  Http1Error scan_error_ = Http1Error::kNone;
  std::string_view scan_reason_;
  size_t token_bytes_ = 0;    // of the method, target, version or status being read
  size_t section_bytes_ = 0;  // of the head or trailer section so far
  size_t section_fields_ = 0;
  size_t head_bytes_ = 0;   // of the last complete head
  uint64_t remaining_ = 0;  // bytes of the length body or chunk still due; the size being read
  bool chunk_digits_ = false;
  size_t chunk_line_bytes_ = 0;
};

}  // namespace tracecar::http
