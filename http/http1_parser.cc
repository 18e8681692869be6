#include "http/http1_parser.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <new>

#include "base/ascii.h"
#include "http/token.h"

namespace tracecar::http {
namespace {

constexpr uint8_t kTchar = 0x01;
constexpr uint8_t kFieldChar = 0x02;   // field-value and reason-phrase: HTAB, SP, VCHAR, obs-text
constexpr uint8_t kTargetChar = 0x04;  // request-target: VCHAR
constexpr uint8_t kHexDigit = 0x08;
constexpr uint8_t kMethodChar = 0x10;  // isMethodChar (http/token.h)
constexpr uint8_t kQdtext = 0x20;      // quoted-string text: HTAB, SP, VCHAR but '"' and '\\', obs-text

constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] |= kTchar | kHexDigit;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] |= kTchar;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] |= kTchar;
  for (int c = 'a'; c <= 'f'; ++c) t[static_cast<size_t>(c)] |= kHexDigit;
  for (int c = 'A'; c <= 'F'; ++c) t[static_cast<size_t>(c)] |= kHexDigit;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<uint8_t>(c)] |= kTchar;
  for (int c = 0x21; c <= 0x7e; ++c) t[static_cast<size_t>(c)] |= kFieldChar | kTargetChar;
  for (int c = 0x80; c <= 0xff; ++c) t[static_cast<size_t>(c)] |= kFieldChar;
  t[static_cast<size_t>(' ')] |= kFieldChar;
  t[static_cast<size_t>('\t')] |= kFieldChar;
  for (size_t c = 0; c < 256; ++c) {
    if (isMethodChar(static_cast<char>(c))) t[c] |= kMethodChar;
    if ((t[c] & kFieldChar) != 0 && c != '"' && c != '\\') t[c] |= kQdtext;
  }
  return t;
}();

bool is(unsigned char c, uint8_t cls) noexcept { return (kClass[c] & cls) != 0; }

// The first byte of data[i, end) not of class cls, or end.
size_t skipClass(const char* data, size_t i, size_t end, uint8_t cls) noexcept {
  while (i < end && is(static_cast<unsigned char>(data[i]), cls)) ++i;
  return i;
}

constexpr std::string_view kVersionPrefix = "HTTP/1.";

// The first byte of data[i, end) that is not SP, VCHAR or obs-text (a control character, HTAB,
// CR, LF, DEL), or end. A word at a time: the lowest flagged byte of a word is exact (the
// subtractions borrow only upwards from a flagged byte).
size_t findNonFieldChar(const char* data, size_t i, size_t end) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    while (i + 8 <= end) {
      uint64_t word = 0;
      std::memcpy(&word, data + i, 8);
      const uint64_t below_space = (word - kOnes * 0x20) & ~word & kHigh;
      const uint64_t x = word ^ (kOnes * 0x7f);
      const uint64_t del = (x - kOnes) & ~x & kHigh;
      if (const uint64_t found = below_space | del; found != 0) {
        return i + static_cast<size_t>(std::countr_zero(found)) / 8;
      }
      i += 8;
    }
  }
  for (; i < end; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (c < 0x20 || c == 0x7f) return i;
  }
  return end;
}

// Lines the byte-by-byte scan would accept, read in one go. Each returns where the line ends
// (past its LF) when all of it lies in data[i, end) and is well-formed, else kNoLine (the
// caller then scans it byte by byte, which finds what is wrong).
constexpr size_t kNoLine = std::numeric_limits<size_t>::max();

// A field value or a reason phrase, then CRLF.
size_t valueLineEnd(const char* data, size_t i, size_t end) noexcept {
  while (true) {
    i = findNonFieldChar(data, i, end);
    if (i == end) return kNoLine;
    if (data[i] == '\t') {
      ++i;
      continue;
    }
    return data[i] == '\r' && i + 1 < end && data[i + 1] == '\n' ? i + 2 : kNoLine;
  }
}

size_t fieldLineEnd(const char* data, size_t i, size_t end) noexcept {
  const size_t name = i;
  i = skipClass(data, i, end, kTchar);
  if (i == name || i == end || data[i] != ':') return kNoLine;
  return valueLineEnd(data, i + 1, end);
}

// "HTTP/1.0" or "HTTP/1.1" at data[i], with at least one more byte after it before end.
bool isVersionAt(const char* data, size_t i, size_t end) noexcept {
  constexpr size_t n = kVersionPrefix.size();
  return end - i > n + 1 && std::memcmp(data + i, kVersionPrefix.data(), n) == 0 &&
         (data[i + n] == '0' || data[i + n] == '1');
}

size_t requestLineEnd(const char* data, size_t i, size_t end, size_t max_uri_length) noexcept {
  const size_t method = i;
  i = skipClass(data, i, end, kMethodChar);
  if (i == method || i - method > kMaxMethodLength || i == end || data[i] != ' ') return kNoLine;
  const size_t target = ++i;
  i = skipClass(data, i, end, kTargetChar);
  if (i == target || i - target > max_uri_length || i == end || data[i] != ' ') return kNoLine;
  ++i;
  constexpr size_t kVersion = kVersionPrefix.size() + 1;  // "HTTP/1.x", then CRLF
  if (!isVersionAt(data, i, end) || end - i < kVersion + 2 || data[i + kVersion] != '\r' ||
      data[i + kVersion + 1] != '\n') {
    return kNoLine;
  }
  return i + kVersion + 2;
}

size_t statusLineEnd(const char* data, size_t i, size_t end) noexcept {
  // "HTTP/1.x NNN" then CRLF, or SP, a reason phrase and CRLF.
  if (!isVersionAt(data, i, end) || end - i < 14 || data[i + 8] != ' ') return kNoLine;
  for (size_t d = i + 9; d < i + 12; ++d) {
    if (data[d] < '0' || data[d] > '9') return kNoLine;
  }
  i += 12;
  if (data[i] == '\r') return data[i + 1] == '\n' ? i + 2 : kNoLine;
  return data[i] == ' ' ? valueLineEnd(data, i + 1, end) : kNoLine;
}

// Is method one llhttp reads in an HTTP/1.x request? Any other is shown to it as GET.
bool llhttpKnowsMethod(std::string_view method) noexcept {
#define TRACECAR_KNOWN_METHOD(num, name, string) \
  if (method == #string) return true;
  HTTP_METHOD_MAP(TRACECAR_KNOWN_METHOD)
#undef TRACECAR_KNOWN_METHOD
  return false;
}

uint64_t hexValue(unsigned char c) noexcept {
  if (c <= '9') return c - '0';
  return (c | 0x20) - 'a' + 10;
}

}  // namespace

std::string_view http1ErrorName(Http1Error error) noexcept {
  switch (error) {
    case Http1Error::kNone:
      return "none";
    case Http1Error::kHeadersTooLarge:
      return "headers_too_large";
    case Http1Error::kTooManyHeaders:
      return "too_many_headers";
    case Http1Error::kUriTooLong:
      return "uri_too_long";
    case Http1Error::kInvalid:
      return "invalid";
    case Http1Error::kUnexpectedEof:
      return "unexpected_eof";
  }
  return "unknown";
}

// C callbacks: each is noexcept and turns a throw from the handler into an error.
struct Http1Parser::Glue {
  static Http1Parser& self(llhttp_t* parser) noexcept {
    return *static_cast<Http1Parser*>(parser->data);
  }

  template <class Action>
  static int guarded(llhttp_t* parser, Action&& action) noexcept {
    try {
      return action(self(parser));
    } catch (const std::bad_alloc&) {
      return self(parser).failCallback(Http1Error::kInvalid, "out of memory");
    } catch (...) {
      return self(parser).failCallback(Http1Error::kInvalid, "exception in a handler");
    }
  }

  static int onMessageBegin(llhttp_t* parser) noexcept {
    self(parser).beginMessage();
    return 0;
  }
  static int onUrl(llhttp_t* parser, const char* at, size_t length) noexcept {
    return guarded(parser, [&](Http1Parser& p) {
      p.head_.target.append(at, length);
      return 0;
    });
  }
  static int onStatus(llhttp_t* parser, const char* at, size_t length) noexcept {
    return guarded(parser, [&](Http1Parser& p) {
      p.head_.reason.append(at, length);
      return 0;
    });
  }
  static int onHeaderField(llhttp_t* parser, const char* at, size_t length) noexcept {
    return guarded(parser, [&](Http1Parser& p) {
      p.field_name_.add(at, length);
      return 0;
    });
  }
  static int onHeaderValue(llhttp_t* parser, const char* at, size_t length) noexcept {
    return guarded(parser, [&](Http1Parser& p) {
      p.field_value_.add(at, length);
      return 0;
    });
  }
  static int onHeaderValueComplete(llhttp_t* parser) noexcept { return self(parser).commitField(); }
  static int onHeadersComplete(llhttp_t* parser) noexcept { return self(parser).headersComplete(); }
  static int onBody(llhttp_t* parser, const char* at, size_t length) noexcept {
    // llhttp flushes an open body span at the end of every run, empty ones included.
    if (length == 0) return 0;
    return guarded(parser, [&](Http1Parser& p) {
      p.callbacks_.onBody(std::string_view(at, length));
      return p.paused_ ? HPE_PAUSED : 0;
    });
  }
  static int onChunkHeader(llhttp_t* parser) noexcept {
    // The last chunk: the fields that follow are trailers.
    if (parser->content_length == 0) self(parser).in_trailers_ = true;
    return 0;
  }
  static int onMessageComplete(llhttp_t* parser) noexcept { return self(parser).messageComplete(); }

  static llhttp_settings_t makeSettings() noexcept {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = onMessageBegin;
    s.on_url = onUrl;
    s.on_status = onStatus;
    s.on_header_field = onHeaderField;
    s.on_header_value = onHeaderValue;
    s.on_header_value_complete = onHeaderValueComplete;
    s.on_headers_complete = onHeadersComplete;
    s.on_body = onBody;
    s.on_chunk_header = onChunkHeader;
    s.on_message_complete = onMessageComplete;
    return s;
  }
  static const llhttp_settings_t kSettings;
};

const llhttp_settings_t Http1Parser::Glue::kSettings = Http1Parser::Glue::makeSettings();

Http1Parser::Http1Parser(Kind kind, Http1ParserCallbacks& callbacks, const Http1Limits& limits)
    : kind_(kind), callbacks_(callbacks), limits_(limits) {
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &Glue::kSettings);
  parser_.data = this;
}

void Http1Parser::pause() noexcept {
  if (!finishing_) paused_ = true;
}
void Http1Parser::resume() noexcept { paused_ = false; }
bool Http1Parser::paused() const noexcept { return paused_; }
bool Http1Parser::upgraded() const noexcept { return upgraded_; }
bool Http1Parser::closed() const noexcept { return closed_; }
bool Http1Parser::inMessage() const noexcept { return in_message_; }

void Http1Parser::resumeAfterUpgrade() noexcept {
  if (!upgraded_ || error_ != Http1Error::kNone || finished_) return;
  upgraded_ = false;
  startSection(false);
}

void Http1Parser::fail(Http1Error error, std::string_view reason) noexcept {
  if (error_ != Http1Error::kNone) return;
  error_ = error;
  error_reason_ = reason;
}

int Http1Parser::failCallback(Http1Error error, const char* reason) noexcept {
  fail(error, reason);
  llhttp_set_error_reason(&parser_, reason);
  return HPE_USER;
}

size_t Http1Parser::parse(std::string_view data) noexcept {
  if (error_ != Http1Error::kNone || finished_ || upgraded_ || paused_) return 0;
  const uint64_t base = consumed_;
  if (completion_pending_) {
    completeMessage();
    if (error_ != Http1Error::kNone || upgraded_ || paused_) return 0;
  }
  while (true) {
    const auto pos = static_cast<size_t>(consumed_ - base);
    if (closed_) {
      consumed_ = base + data.size();
      scanned_ = std::max(scanned_, consumed_);
      return data.size();
    }
    // Check what llhttp has not seen yet (bytes of data before scanned_ were checked when a
    // pause left them unparsed).
    auto checked = static_cast<size_t>(std::min<uint64_t>(scanned_ - base, data.size()));
    if (checked < data.size()) {
      // A message whose head is scanned whole here, with nothing of it given to llhttp yet.
      const bool fresh = direct_heads_ && scan_ == Scan::kMessageStart && scanned_ == consumed_ &&
                         !resume_pending_;
      const size_t n = scan(data.data() + checked, data.size() - checked);
      scanned_ += n;
      checked += n;
      if (fresh && scan_ == Scan::kHeadDone && readDirectHead(data.substr(pos, checked - pos))) {
        hole_ = Hole::kNone;  // the method's: llhttp is not in this message
        if (error_ != Http1Error::kNone || paused_ || upgraded_) {
          return static_cast<size_t>(consumed_ - base);
        }
        continue;
      }
    }
    if (direct_ && pos < checked) {
      deliverDirect(data.data() + pos, checked - pos);
      if (error_ != Http1Error::kNone || paused_ || upgraded_) {
        return static_cast<size_t>(consumed_ - base);
      }
      continue;
    }
    if (pos < checked || resume_pending_) {
      resume_pending_ = false;
      feed(data.data() + pos, checked - pos);
      if (error_ != Http1Error::kNone || paused_ || upgraded_) {
        return static_cast<size_t>(consumed_ - base);
      }
      continue;
    }
    // llhttp has every checked byte.
    if (scan_ == Scan::kFailed) {
      fail(scan_error_, scan_reason_);
      return pos;
    }
    if (pos == data.size()) return pos;
    // The scan waits for a decision llhttp has not made on bytes it already has.
    fail(Http1Error::kInvalid, "framing mismatch");
    return pos;
  }
}

void Http1Parser::execute(const char* data, size_t size) noexcept {
  static constexpr char kNothing = 0;
  if (size == 0) data = &kNothing;
  const llhttp_errno_t status = llhttp_execute(&parser_, data, size);
  // A field that goes on in the next parse() must not view this one's bytes.
  try {
    field_name_.keep();
    field_value_.keep();
  } catch (...) {
    fail(Http1Error::kInvalid, "out of memory");
  }
  if (status == HPE_OK) {
    consumed_ += size;
    return;
  }
  const char* stop = llhttp_get_error_pos(&parser_);
  const bool within = stop != nullptr && stop >= data && stop <= data + size;
  consumed_ += within ? static_cast<size_t>(stop - data) : 0;
  if (status == HPE_PAUSED) {
    if (message_ended_) {
      // A fresh llhttp per message: nothing of the last one (flags, close state) carries over.
      message_ended_ = false;
      llhttp_reset(&parser_);
    } else {
      llhttp_resume(&parser_);
      resume_pending_ = true;
    }
    return;
  }
  failParse(status);
}

void Http1Parser::failParse(llhttp_errno_t status) noexcept {
  const char* reason = llhttp_get_error_reason(&parser_);
  fail(Http1Error::kInvalid, reason != nullptr ? reason : llhttp_errno_name(status));
}

void Http1Parser::feed(const char* data, size_t size) noexcept {
  if (hole_ == Hole::kNone || size == 0) {
    execute(data, size);
    return;
  }
  if (consumed_ < hole_begin_) {
    execute(data, static_cast<size_t>(std::min<uint64_t>(size, hole_begin_ - consumed_)));
    return;
  }
  const auto n = static_cast<size_t>(std::min<uint64_t>(size, hole_end_ - consumed_));
  if (hole_ == Hole::kMethod) {
    try {
      if (consumed_ == hole_begin_) method_.clear();
      method_.append(data, n);
    } catch (...) {
      fail(Http1Error::kInvalid, "out of memory");
      return;
    }
  }
  consumed_ += n;
  if (consumed_ != hole_end_) return;
  const Hole ended = hole_;
  hole_ = Hole::kNone;
  if (ended == Hole::kMethod) show(llhttpKnowsMethod(method_) ? std::string_view(method_) : "GET");
}

void Http1Parser::show(std::string_view bytes) noexcept {
  const llhttp_errno_t status = llhttp_execute(&parser_, bytes.data(), bytes.size());
  if (status == HPE_OK) return;
  failParse(status);
}

void Http1Parser::finish() noexcept {
  if (finished_) return;
  finishing_ = true;
  paused_ = false;
  if (error_ == Http1Error::kNone && !upgraded_) {
    // First what needs no more bytes: a completion owed, llhttp stopped at the last body byte.
    if (completion_pending_) completeMessage();
    if (resume_pending_ && error_ == Http1Error::kNone && !upgraded_) {
      resume_pending_ = false;
      execute(nullptr, 0);
      if (completion_pending_) completeMessage();
    }
    if (error_ == Http1Error::kNone && !upgraded_ && !closed_) {
      if (scan_ == Scan::kBodyEof) {
        const llhttp_errno_t status = llhttp_finish(&parser_);
        if (completion_pending_) completeMessage();
        if (status != HPE_OK && status != HPE_PAUSED) {
          fail(Http1Error::kUnexpectedEof, "connection closed in the middle of a message");
        }
      } else if (in_message_) {
        fail(Http1Error::kUnexpectedEof, "connection closed in the middle of a message");
      }
    }
  }
  finishing_ = false;
  finished_ = true;
}

void Http1Parser::startSection(bool trailers) noexcept {
  scan_ = trailers ? Scan::kLineStart : Scan::kMessageStart;
  scan_trailers_ = trailers;
  section_bytes_ = 0;
  section_fields_ = 0;
  token_bytes_ = 0;
}

size_t Http1Parser::scanFailed(size_t at, Http1Error error, std::string_view reason) noexcept {
  scan_ = Scan::kFailed;
  scan_error_ = error;
  scan_reason_ = reason;
  return at;
}

size_t Http1Parser::scanLines(const char* data, size_t i, size_t size) noexcept {
  while (i < size) {
    // The section's size limit bounds the lines as it bounds the byte-by-byte scan.
    const size_t room =
        limits_.max_header_bytes > section_bytes_ ? limits_.max_header_bytes - section_bytes_ : 0;
    const size_t end = i + std::min(room, size - i);
    size_t next = kNoLine;
    if (scan_ == Scan::kMessageStart) {
      const bool request = kind_ == Kind::kRequest;
      next = request ? requestLineEnd(data, i, end, limits_.max_uri_length)
                     : statusLineEnd(data, i, end);
      if (next == kNoLine) return i;
      if (request) {
        if (!startHole(Hole::kMethod, scanned_ + i)) return i;
        hole_end_ = scanned_ + skipClass(data, i, end, kMethodChar);
      }
      in_message_ = true;
      token_bytes_ = request ? kVersionPrefix.size() + 1 : 3;  // as the byte scan leaves it
    } else {
      if (end - i >= 2 && data[i] == '\r' && data[i + 1] == '\n') {
        section_bytes_ += 2;
        if (scan_trailers_) {
          scan_ = Scan::kMessageDone;
        } else {
          scan_ = Scan::kHeadDone;
          head_bytes_ = section_bytes_;
        }
        return i + 2;
      }
      if (section_fields_ >= limits_.max_header_count) return i;
      next = fieldLineEnd(data, i, end);
      if (next == kNoLine) return i;
      ++section_fields_;
    }
    section_bytes_ += next - i;
    scan_ = Scan::kLineStart;
    i = next;
  }
  return i;
}

size_t Http1Parser::scan(const char* data, size_t size) noexcept {
  constexpr auto kInvalid = Http1Error::kInvalid;
  size_t i = 0;
  while (i < size) {
    if (scan_ == Scan::kLineStart || scan_ == Scan::kMessageStart) {
      // Whole well-formed lines at once; the first line that is not (or not complete) goes
      // byte by byte below.
      i = scanLines(data, i, size);
      if (scan_ == Scan::kHeadDone || scan_ == Scan::kMessageDone) return i;
      if (i == size) return i;
    }
    const auto c = static_cast<unsigned char>(data[i]);
    switch (scan_) {
      case Scan::kHeadDone:
      case Scan::kMessageDone:
      case Scan::kFailed:
        return i;
      case Scan::kBodyEof:
        return size;
      case Scan::kBodyLength:
      case Scan::kChunkData: {
        const auto n = static_cast<size_t>(std::min<uint64_t>(remaining_, size - i));
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) {
          if (scan_ == Scan::kBodyLength) {
            scan_ = Scan::kMessageDone;
            return i;
          }
          scan_ = Scan::kChunkDataCr;
        }
        continue;
      }
      case Scan::kChunkDataCr:
        if (c != '\r') return scanFailed(i, kInvalid, "chunk data not followed by CRLF");
        scan_ = Scan::kChunkDataLf;
        break;
      case Scan::kChunkDataLf:
        if (c != '\n') return scanFailed(i, kInvalid, "chunk data not followed by CRLF");
        scan_ = Scan::kChunkSize;
        remaining_ = 0;
        chunk_digits_ = false;
        chunk_line_bytes_ = 0;
        break;
      case Scan::kChunkSize:
        if (c == ';' && chunk_digits_ && !startHole(Hole::kChunkExt, scanned_ + i)) return i;
        if (++chunk_line_bytes_ > limits_.max_header_bytes) {
          return scanFailed(i, kInvalid, "chunk size line too long");
        }
        if (is(c, kHexDigit)) {
          if (remaining_ > (std::numeric_limits<uint64_t>::max() >> 4)) {
            return scanFailed(i, kInvalid, "chunk size overflow");
          }
          remaining_ = (remaining_ << 4) | hexValue(c);
          chunk_digits_ = true;
        } else if (chunk_digits_ && c == ';') {
          scan_ = Scan::kChunkExtName;  // the hole started above
          token_bytes_ = 0;
        } else if (chunk_digits_ && c == '\r') {
          scan_ = Scan::kChunkSizeLf;
        } else {
          return scanFailed(i, kInvalid, "invalid chunk size");
        }
        break;
      case Scan::kChunkExtName:
      case Scan::kChunkExtValue:
      case Scan::kChunkExtToken:
      case Scan::kChunkExtQuoted:
      case Scan::kChunkExtQuotedPair:
      case Scan::kChunkExtQuoteEnd:
        // chunk-ext = *( ";" chunk-ext-name [ "=" ( token / quoted-string ) ] ) (RFC 9112
        // section 7.1.1, without the optional whitespace): llhttp is not shown extensions (they
        // are a hole), so the grammar is checked here.
        if (c == '\n') return scanFailed(i, kInvalid, "bare LF");
        if (++chunk_line_bytes_ > limits_.max_header_bytes) {
          return scanFailed(i, kInvalid, "chunk size line too long");
        }
        if (scan_ == Scan::kChunkExtQuoted) {
          if (c == '"') {
            scan_ = Scan::kChunkExtQuoteEnd;
          } else if (c == '\\') {
            scan_ = Scan::kChunkExtQuotedPair;
          } else if (!is(c, kQdtext)) {
            return scanFailed(i, kInvalid, "invalid character in chunk extension");
          }
          break;
        }
        if (scan_ == Scan::kChunkExtQuotedPair) {
          if (!is(c, kFieldChar)) {
            return scanFailed(i, kInvalid, "invalid character in chunk extension");
          }
          scan_ = Scan::kChunkExtQuoted;
          break;
        }
        if (is(c, kTchar) && scan_ != Scan::kChunkExtQuoteEnd) {
          if (scan_ == Scan::kChunkExtValue) scan_ = Scan::kChunkExtToken;
          ++token_bytes_;
          break;
        }
        if (c == '"' && scan_ == Scan::kChunkExtValue) {
          scan_ = Scan::kChunkExtQuoted;
          break;
        }
        if (c == '=' && scan_ == Scan::kChunkExtName && token_bytes_ > 0) {
          scan_ = Scan::kChunkExtValue;
          break;
        }
        if ((c == ';' || c == '\r') &&
            ((scan_ == Scan::kChunkExtName && token_bytes_ > 0) ||
             scan_ == Scan::kChunkExtToken || scan_ == Scan::kChunkExtQuoteEnd)) {
          if (c == ';') {
            scan_ = Scan::kChunkExtName;
            token_bytes_ = 0;
          } else {
            hole_end_ = scanned_ + i;  // the CRLF is shown to llhttp
            scan_ = Scan::kChunkSizeLf;
          }
          break;
        }
        return scanFailed(i, kInvalid, "invalid chunk extension");
      case Scan::kChunkSizeLf:
        if (c != '\n') return scanFailed(i, kInvalid, "bare CR");
        if (remaining_ == 0) {
          startSection(true);
        } else {
          scan_ = Scan::kChunkData;
        }
        break;
      default: {
        if (scan_ == Scan::kValue || scan_ == Scan::kName) {
          // A run of bytes that only continue the field name or value, up to the size limit:
          // what the byte-by-byte steps below would accept one at a time.
          const uint8_t cls = scan_ == Scan::kValue ? kFieldChar : kTchar;
          const size_t room = limits_.max_header_bytes > section_bytes_
                                  ? limits_.max_header_bytes - section_bytes_
                                  : 0;
          const size_t end = i + std::min(room, size - i);
          size_t j = cls == kFieldChar ? findNonFieldChar(data, i, end) : i;
          while (j < end && is(static_cast<unsigned char>(data[j]), cls)) ++j;
          if (j > i) {
            section_bytes_ += j - i;
            i = j;
            continue;
          }
        }
        // Head or trailer bytes: all of them count, CRLFs included.
        if (++section_bytes_ > limits_.max_header_bytes) {
          return scanFailed(
              i, Http1Error::kHeadersTooLarge,
              scan_trailers_ ? "trailer section too large" : "header section too large");
        }
        switch (scan_) {
          case Scan::kMessageStart:
            if (c == '\r') {
              scan_ = Scan::kLeadingLf;
            } else if (c == '\n') {
              return scanFailed(i, kInvalid, "bare LF");
            } else {
              --section_bytes_;
              // The method is a hole: llhttp is shown it once it is whole (feed).
              if (kind_ == Kind::kRequest && !startHole(Hole::kMethod, scanned_ + i)) return i;
              in_message_ = true;
              scan_ = kind_ == Kind::kRequest ? Scan::kMethod : Scan::kResponseVersion;
              token_bytes_ = 0;
              continue;  // the same byte again, as the first of the start line
            }
            break;
          case Scan::kLeadingLf:
            if (c != '\n') return scanFailed(i, kInvalid, "bare CR");
            scan_ = Scan::kMessageStart;
            break;
          case Scan::kMethod:
            // isMethodChar, at most kMaxMethodLength (http/token.h): what the sniffer takes for
            // a method, so that a request is treated alike wherever on its connection it comes.
            if (is(c, kMethodChar) && token_bytes_ < kMaxMethodLength) {
              ++token_bytes_;
            } else if (c == ' ' && token_bytes_ > 0) {
              scan_ = Scan::kTarget;
              token_bytes_ = 0;
              hole_end_ = scanned_ + i;
            } else {
              return scanFailed(i, kInvalid, "invalid method");
            }
            break;
          case Scan::kTarget:
            if (is(c, kTargetChar)) {
              if (++token_bytes_ > limits_.max_uri_length) {
                return scanFailed(i, Http1Error::kUriTooLong, "request target too long");
              }
            } else if (c == ' ' && token_bytes_ > 0) {
              scan_ = Scan::kRequestVersion;
              token_bytes_ = 0;
            } else {
              return scanFailed(i, kInvalid, "invalid request target");
            }
            break;
          case Scan::kRequestVersion:
          case Scan::kResponseVersion:
            if (token_bytes_ < kVersionPrefix.size()) {
              if (c != static_cast<unsigned char>(kVersionPrefix[token_bytes_])) {
                const bool digit = token_bytes_ == 5 && c >= '0' && c <= '9';
                return scanFailed(i, kInvalid,
                                  digit ? "unsupported HTTP version" : "invalid HTTP version");
              }
            } else if (token_bytes_ == kVersionPrefix.size()) {
              if (c != '0' && c != '1') {
                const bool digit = c >= '0' && c <= '9';
                return scanFailed(i, kInvalid,
                                  digit ? "unsupported HTTP version" : "invalid HTTP version");
              }
            } else if (scan_ == Scan::kResponseVersion) {
              if (c != ' ') return scanFailed(i, kInvalid, "invalid HTTP version");
              scan_ = Scan::kStatus;
              token_bytes_ = 0;
              break;
            } else if (c == '\r') {
              scan_ = Scan::kStartLineLf;
              break;
            } else {
              return scanFailed(i, kInvalid, c == '\n' ? "bare LF" : "invalid HTTP version");
            }
            ++token_bytes_;
            break;
          case Scan::kStatus:
            if (token_bytes_ < 3) {
              if (c < '0' || c > '9') return scanFailed(i, kInvalid, "invalid status code");
              ++token_bytes_;
            } else if (c == ' ') {
              scan_ = Scan::kReason;
            } else if (c == '\r') {
              scan_ = Scan::kStartLineLf;  // no reason phrase, nor the space before it
            } else {
              return scanFailed(i, kInvalid, c == '\n' ? "bare LF" : "invalid status code");
            }
            break;
          case Scan::kReason:
            if (c == '\r') {
              scan_ = Scan::kStartLineLf;
            } else if (!is(c, kFieldChar)) {
              return scanFailed(i, kInvalid,
                                c == '\n' ? "bare LF" : "invalid character in reason phrase");
            }
            break;
          case Scan::kStartLineLf:
          case Scan::kLineLf:
            if (c != '\n') return scanFailed(i, kInvalid, "bare CR");
            scan_ = Scan::kLineStart;
            break;
          case Scan::kLineStart:
            if (c == '\r') {
              scan_ = Scan::kEndLf;
            } else if (is(c, kTchar)) {
              if (++section_fields_ > limits_.max_header_count) {
                return scanFailed(
                    i, Http1Error::kTooManyHeaders,
                    scan_trailers_ ? "too many trailer fields" : "too many header fields");
              }
              scan_ = Scan::kName;
            } else if (c == ' ' || c == '\t') {
              return scanFailed(i, kInvalid, "line starts with whitespace (obs-fold)");
            } else if (c == ':') {
              return scanFailed(i, kInvalid, "empty field name");
            } else {
              return scanFailed(i, kInvalid,
                                c == '\n' ? "bare LF" : "invalid character in field name");
            }
            break;
          case Scan::kName:
            if (c == ':') {
              scan_ = Scan::kValue;
            } else if (c == ' ' || c == '\t') {
              return scanFailed(i, kInvalid, "whitespace between field name and colon");
            } else if (c == '\r' || c == '\n') {
              return scanFailed(i, kInvalid, "field line without colon");
            } else if (!is(c, kTchar)) {
              return scanFailed(i, kInvalid, "invalid character in field name");
            }
            break;
          case Scan::kValue:
            if (c == '\r') {
              scan_ = Scan::kLineLf;
            } else if (!is(c, kFieldChar)) {
              return scanFailed(i, kInvalid,
                                c == '\n' ? "bare LF" : "invalid character in field value");
            }
            break;
          case Scan::kEndLf:
            if (c != '\n') return scanFailed(i, kInvalid, "bare CR");
            ++i;
            if (scan_trailers_) {
              scan_ = Scan::kMessageDone;
            } else {
              scan_ = Scan::kHeadDone;
              head_bytes_ = section_bytes_;
            }
            return i;
          default:
            return scanFailed(i, kInvalid, "framing mismatch");
        }
        break;
      }
    }
    ++i;
  }
  return size;
}

void Http1Parser::beginMessage() noexcept {
  head_.method.clear();
  head_.target.clear();
  head_.status = 0;
  head_.reason.clear();
  head_.version_major = 1;
  head_.version_minor = 1;
  head_.headers.clear();
  head_.content_length.reset();
  head_.chunked = false;
  head_.keep_alive = false;
  head_.reusable = false;
  head_.upgrade = false;
  head_.header_bytes = 0;
  trailers_.clear();
  field_name_.clear();
  field_value_.clear();
  in_trailers_ = false;
  upgrade_after_ = false;
  close_after_ = false;
}

int Http1Parser::commitField() noexcept {
  // Framing fields never belong in trailers (RFC 9110 section 6.5.1), and llhttp lets them
  // through: such a field is dropped, as a recipient that does not merge trailers may (RFC 9112
  // section 7.1.2), and the message, whose framing the header section settled, goes on.
  const std::string_view name = field_name_.text();
  if (in_trailers_ && (HeaderMap::nameEquals(name, "Content-Length") ||
                       HeaderMap::nameEquals(name, "Transfer-Encoding"))) {
    field_name_.clear();
    field_value_.clear();
    return 0;
  }
  try {
    (in_trailers_ ? trailers_ : head_.headers).add(name, ascii::trimOws(field_value_.text()));
  } catch (...) {
    return failCallback(Http1Error::kInvalid, "out of memory");
  }
  field_name_.clear();
  field_value_.clear();
  return 0;
}

int Http1Parser::headersComplete() noexcept {
  if (scan_ != Scan::kHeadDone) return failCallback(Http1Error::kInvalid, "framing mismatch");
  const uint16_t flags = parser_.flags;
  const bool request = kind_ == Kind::kRequest;
  // Checks llhttp makes only after this callback, or not at all.
  if ((flags & F_TRANSFER_ENCODING) != 0 && parser_.http_minor == 0) {
    return failCallback(Http1Error::kInvalid, "Transfer-Encoding in an HTTP/1.0 message");
  }
  if (request && (flags & F_TRANSFER_ENCODING) != 0 && (flags & F_CHUNKED) == 0) {
    return failCallback(Http1Error::kInvalid, "Transfer-Encoding does not end in chunked");
  }
  const int status = parser_.status_code;
  if (!request && (status < 100 || status > 599)) {
    return failCallback(Http1Error::kInvalid, "invalid status code");
  }
  if (!field_name_.empty() && commitField() != 0) return HPE_USER;

  const bool connect = request && parser_.method == HTTP_CONNECT;
  bool no_body = false;
  try {
    // method_ is what came: every request llhttp reads starts with its method as a hole.
    if (request) head_.method = method_;
    head_.status = request ? 0 : status;
    head_.version_major = parser_.http_major;
    head_.version_minor = parser_.http_minor;
    if ((flags & F_CONTENT_LENGTH) != 0) head_.content_length = parser_.content_length;
    head_.chunked = (flags & F_CHUNKED) != 0;
    head_.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
    head_.reusable = (flags & F_CONNECTION_CLOSE) == 0 &&
                     (parser_.http_major > 1 || parser_.http_minor >= 1 ||
                      (flags & F_CONNECTION_KEEP_ALIVE) != 0);
    head_.upgrade = request ? parser_.upgrade != 0 : status == 101;
    head_.header_bytes = head_bytes_;
    const bool skip = callbacks_.onHead(head_);
    if (!request) no_body = skip || status / 100 == 1 || status == 204 || status == 304;
  } catch (const std::bad_alloc&) {
    return failCallback(Http1Error::kInvalid, "out of memory");
  } catch (...) {
    return failCallback(Http1Error::kInvalid, "exception in a handler");
  }
  // A response handler may have marked a CONNECT 2xx; a request's upgrade is llhttp's reading.
  upgrade_after_ = request ? parser_.upgrade != 0 : (status == 101 || head_.upgrade);
  if (upgrade_after_ && !request) no_body = true;

  // How the body is framed: RFC 9112 section 6.3, as llhttp reads it.
  const bool has_body = (flags & F_CHUNKED) != 0 || parser_.content_length > 0;
  if (no_body || (upgrade_after_ && (connect || !has_body))) {
    scan_ = Scan::kMessageDone;
  } else if ((flags & F_CHUNKED) != 0) {
    scan_ = Scan::kChunkSize;
    remaining_ = 0;
    chunk_digits_ = false;
    chunk_line_bytes_ = 0;
  } else if ((flags & F_TRANSFER_ENCODING) != 0) {
    scan_ = Scan::kBodyEof;
  } else if ((flags & F_CONTENT_LENGTH) != 0) {
    remaining_ = parser_.content_length;
    scan_ = remaining_ > 0 ? Scan::kBodyLength : Scan::kMessageDone;
  } else {
    scan_ = request ? Scan::kMessageDone : Scan::kBodyEof;
  }
  // No body: tell llhttp (1), so it does not wait for one; a pause is then owed to the
  // completion that follows at once.
  if (scan_ == Scan::kMessageDone) return 1;
  return paused_ ? HPE_PAUSED : 0;
}

int Http1Parser::messageComplete() noexcept {
  const bool at_end = scan_ == Scan::kMessageDone || (scan_ == Scan::kBodyEof && finishing_);
  if (!at_end) return failCallback(Http1Error::kInvalid, "framing mismatch");
  message_ended_ = true;
  const bool interim =
      kind_ == Kind::kResponse && parser_.status_code / 100 == 1 && parser_.status_code != 101;
  close_after_ = !upgrade_after_ && !interim && llhttp_should_keep_alive(&parser_) == 0;
  if (!trailers_.empty()) {
    try {
      callbacks_.onTrailers(trailers_);
    } catch (...) {
      return failCallback(Http1Error::kInvalid, "exception in a handler");
    }
  }
  if (paused_) {
    completion_pending_ = true;
    return HPE_PAUSED;
  }
  completeMessage();
  // Always stop here: the next message starts on a fresh llhttp and a fresh scan.
  return error_ != Http1Error::kNone ? HPE_USER : HPE_PAUSED;
}

void Http1Parser::completeMessage() noexcept {
  completion_pending_ = false;
  in_message_ = false;
  if (upgrade_after_) {
    upgraded_ = true;
  } else if (close_after_) {
    closed_ = true;
  } else {
    startSection(false);
  }
  try {
    callbacks_.onMessageComplete();
  } catch (...) {
    fail(Http1Error::kInvalid, "exception in a handler");
  }
}

}  // namespace tracecar::http
