// Http1Parser's direct path: the common message read without llhttp. The scan has already
// checked every byte of the head (line shapes, characters, limits), so what is left is to split
// the lines and to decide the framing. Anything llhttp would read with a rule of its own is left
// to llhttp, so both paths agree on every event and every error.
#include <cstring>
#include <new>

#include "base/ascii.h"
#include "http/http1_parser.h"

namespace tracecar::http {
namespace {

constexpr std::string_view kCrlf = "\r\n";

// Methods taken here; any other (CONNECT above all) goes through llhttp.
bool isDirectMethod(std::string_view m) noexcept {
  switch (m.size()) {
    case 3:
      return m == "GET" || m == "PUT";
    case 4:
      return m == "POST" || m == "HEAD";
    case 5:
      return m == "PATCH";
    case 6:
      return m == "DELETE";
    case 7:
      return m == "OPTIONS";
    default:
      return false;
  }
}

// Header fields llhttp reads for framing or connection state.
enum class Special : uint8_t { kNone, kContentLength, kConnection, kOther };

Special special(std::string_view name) noexcept {
  switch (name.size()) {
    case 7:
      return ascii::equalsIgnoreCase(name, "upgrade") ? Special::kOther : Special::kNone;
    case 10:
      return ascii::equalsIgnoreCase(name, "connection") ? Special::kConnection : Special::kNone;
    case 14:
      return ascii::equalsIgnoreCase(name, "content-length") ? Special::kContentLength
                                                             : Special::kNone;
    case 16:
      return ascii::equalsIgnoreCase(name, "proxy-connection") ? Special::kOther : Special::kNone;
    case 17:
      return ascii::equalsIgnoreCase(name, "transfer-encoding") ? Special::kOther
                                                                : Special::kNone;
    default:
      return Special::kNone;
  }
}

// 1 to 15 digits (no sign, no spaces): far below where llhttp's overflow check starts.
bool parseLength(std::string_view v, uint64_t& out) noexcept {
  if (v.empty() || v.size() > 15) return false;
  uint64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

}  // namespace

bool Http1Parser::readDirectHead(std::string_view head) noexcept {
  const bool request = kind_ == Kind::kRequest;
  size_t at = 0;
  while (head.substr(at, 2) == kCrlf) at += 2;  // empty lines before the start line
  size_t eol = head.find(kCrlf, at);
  const std::string_view start = head.substr(at, eol - at);

  // The start line; the scan checked its shape.
  std::string_view method;
  std::string_view target;
  std::string_view reason;
  int status = 0;
  if (request) {
    const size_t sp1 = start.find(' ');
    const size_t sp2 = start.find(' ', sp1 + 1);
    method = start.substr(0, sp1);
    target = start.substr(sp1 + 1, sp2 - sp1 - 1);
    if (start.substr(sp2 + 1) != "HTTP/1.1" || !isDirectMethod(method) || target[0] != '/') {
      return false;
    }
  } else {
    if (start.substr(0, 9) != "HTTP/1.1 ") return false;
    status = (start[9] - '0') * 100 + (start[10] - '0') * 10 + (start[11] - '0');
    // 1xx (interim, 101) and codes out of range are llhttp's.
    if (status < 200 || status > 599) return false;
    if (start.size() > 12) reason = start.substr(13);
  }

  beginMessage();
  bool close = false;
  bool connection_seen = false;
  std::optional<uint64_t> length;
  try {
    // Field lines as the scan left them: a token, a colon, the value, CRLF; the head ends with
    // an empty line.
    const char* const last = head.data() + head.size() - 2;
    for (const char* p = head.data() + eol + 2; p < last;) {
      const char* colon = p;
      while (*colon != ':') ++colon;
      const auto* cr = static_cast<const char*>(
          std::memchr(colon + 1, '\r', static_cast<size_t>(last + 1 - colon)));
      const std::string_view name(p, static_cast<size_t>(colon - p));
      const std::string_view raw(colon + 1, static_cast<size_t>(cr - colon - 1));
      p = cr + 2;
      const std::string_view value = ascii::trimOws(raw);
      // llhttp reads the values of its own fields with rules of its own for whitespace
      // around them: only "name: value", spaces before and nothing after, is read here.
      const auto plain = [&] {
        const size_t first = raw.find_first_not_of(' ');
        return first != std::string_view::npos && raw.substr(first) == value;
      };
      switch (special(name)) {
        case Special::kNone:
          break;
        case Special::kContentLength: {
          uint64_t n = 0;
          if (length || !plain() || !parseLength(value, n)) return false;  // llhttp's to judge
          length = n;
          break;
        }
        case Special::kConnection:
          if (connection_seen || !plain()) return false;
          connection_seen = true;
          if (ascii::equalsIgnoreCase(value, "close")) {
            close = true;
          } else if (!ascii::equalsIgnoreCase(value, "keep-alive")) {
            return false;
          }
          break;
        case Special::kOther:
          return false;
      }
      head_.headers.add(name, value);
    }
    // A response without a length is framed by the close (or answers HEAD): llhttp's.
    if (!request && !length && status != 204 && status != 304) return false;

    // From here on the message is ours.
    direct_ = true;
    consumed_ += head.size();
    if (request) {
      head_.method.assign(method);
      head_.target.assign(target);
    } else {
      head_.reason.assign(reason);
    }
    head_.status = status;
    head_.version_major = 1;
    head_.version_minor = 1;
    head_.content_length = length;
    head_.keep_alive = !close;
    head_.reusable = !close;
    head_.header_bytes = head_bytes_;
    const bool skip = callbacks_.onHead(head_);
    // A CONNECT 2xx cannot be direct (CONNECT never is); a response handler's upgrade mark is
    // honoured as llhttp's path does.
    upgrade_after_ = !request && head_.upgrade;
    close_after_ = close;
    const bool no_body =
        (!request && (skip || upgrade_after_ || status == 204 || status == 304)) || !length ||
        *length == 0;
    remaining_ = no_body ? 0 : *length;  // the scan counts the body off from here
  } catch (const std::bad_alloc&) {
    if (!direct_) return false;
    fail(Http1Error::kInvalid, "out of memory");
    return true;
  } catch (...) {
    if (!direct_) return false;
    fail(Http1Error::kInvalid, "exception in a handler");
    return true;
  }
  if (remaining_ > 0) {
    scan_ = Scan::kBodyLength;
  } else {
    scan_ = Scan::kMessageDone;
    completeDirect();
  }
  return true;
}

void Http1Parser::deliverDirect(const char* data, size_t size) noexcept {
  // The scan stops at the body's last byte: every byte it checked is body.
  consumed_ += size;
  try {
    callbacks_.onBody(std::string_view(data, size));
  } catch (const std::bad_alloc&) {
    fail(Http1Error::kInvalid, "out of memory");
    return;
  } catch (...) {
    fail(Http1Error::kInvalid, "exception in a handler");
    return;
  }
  if (scan_ == Scan::kMessageDone) completeDirect();
}

void Http1Parser::completeDirect() noexcept {
  direct_ = false;
  if (paused_) {
    completion_pending_ = true;
    return;
  }
  completeMessage();
}

}  // namespace tracecar::http
