// Arbitrary bytes through a request parser and a response parser, whole and cut where the first
// byte says: nothing may crash, every head that parses is within the limits, events come in
// order, and where the bytes were cut (or whether the handler paused) changes nothing. A third
// parser reads every head through llhttp (no direct heads): it must give the same log.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/http1_parser.h"

using tracecar::http::HeaderMap;
using tracecar::http::Http1Error;
using tracecar::http::Http1Head;
using tracecar::http::Http1Limits;
using tracecar::http::Http1Parser;
using tracecar::http::Http1ParserCallbacks;

namespace {

constexpr Http1Limits kLimits{.max_header_bytes = 256, .max_header_count = 8, .max_uri_length = 32};

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Bytes of the fields as received at least: name, colon, value, CRLF.
size_t minimumBytes(const HeaderMap& fields) {
  size_t n = 0;
  for (size_t i = 0; i < fields.size(); ++i)
    n += fields.name(i).size() + fields.value(i).size() + 3;
  return n;
}

// Keeps a log of the events, with each message's body pieces joined, and checks their order.
class Recorder final : public Http1ParserCallbacks {
 public:
  Recorder(Http1Parser::Kind kind, bool pause_in_body, bool no_body, bool direct = true)
      : parser_(kind, *this, kLimits),
        kind_(kind),
        pause_in_body_(pause_in_body),
        no_body_(no_body) {
    parser_.setDirectHeads(direct);
  }

  bool onHead(Http1Head& head) override {
    check(!in_message_);
    in_message_ = true;
    check(head.header_bytes <= kLimits.max_header_bytes);
    check(head.headers.size() <= kLimits.max_header_count);
    check(head.target.size() <= kLimits.max_uri_length);
    check(minimumBytes(head.headers) + head.target.size() + head.reason.size() <=
          head.header_bytes);
    check((kind_ == Http1Parser::Kind::kRequest) == (head.status == 0));
    check(!head.chunked || !head.content_length.has_value());
    content_length_ = head.content_length;
    body_bytes_ = 0;
    log_ += "H" + head.method + " " + head.target + " " + std::to_string(head.status) + " " +
            head.reason + (head.keep_alive ? " k" : "") + (head.upgrade ? " u" : "") + "\n";
    for (size_t i = 0; i < head.headers.size(); ++i) {
      log_ += std::string(head.headers.name(i)) + ":" + std::string(head.headers.value(i)) + "\n";
    }
    return no_body_;
  }
  void onBody(std::string_view data) override {
    check(in_message_ && !data.empty());
    body_bytes_ += data.size();
    check(!content_length_ || body_bytes_ <= *content_length_);
    body_.append(data);
    if (pause_in_body_) parser_.pause();
  }
  void onTrailers(HeaderMap& trailers) override {
    check(in_message_ && !trailers.empty() && trailers.size() <= kLimits.max_header_count);
    flushBody();
    log_ += "T" + std::to_string(trailers.size()) + "\n";
  }
  void onMessageComplete() override {
    check(in_message_);
    in_message_ = false;
    if (kind_ == Http1Parser::Kind::kRequest && content_length_ && !parser_.upgraded()) {
      check(body_bytes_ == *content_length_);
    }
    flushBody();
    log_ += parser_.upgraded() ? "U\n" : "C\n";
  }

  void feed(std::string_view bytes) {
    pending_.append(bytes);
    while (true) {
      const size_t n = parser_.parse(pending_);
      check(n <= pending_.size());
      pending_.erase(0, n);
      if (parser_.error() != Http1Error::kNone) {
        check(parser_.parse(pending_) == 0);
        return;
      }
      if (!parser_.paused()) return;
      parser_.resume();
    }
  }

  std::string finish() {
    parser_.finish();
    flushBody();
    check(parser_.parse("x") == 0);
    check(!in_message_ || parser_.error() != Http1Error::kNone || parser_.upgraded());
    return log_ + "E" + std::string(tracecar::http::http1ErrorName(parser_.error())) + " " +
           std::string(parser_.errorReason()) + " left " + std::to_string(pending_.size());
  }

 private:
  void flushBody() {
    if (body_.empty()) return;
    log_ += "B" + body_ + "\n";
    body_.clear();
  }

  Http1Parser parser_;
  Http1Parser::Kind kind_;
  bool pause_in_body_;
  bool no_body_;
  bool in_message_ = false;
  std::optional<uint64_t> content_length_;
  uint64_t body_bytes_ = 0;
  std::string body_;
  std::string pending_;
  std::string log_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t cut = input.size() * control / 255;
  const bool pause = (control & 1) != 0;
  const bool no_body = (control & 2) != 0;
  for (const auto kind : {Http1Parser::Kind::kRequest, Http1Parser::Kind::kResponse}) {
    Recorder whole(kind, pause, no_body);
    whole.feed(input);
    Recorder split(kind, !pause, no_body);
    split.feed(input.substr(0, cut));
    split.feed(input.substr(cut));
    Recorder llhttp_only(kind, pause, no_body, false);
    llhttp_only.feed(input);
    const std::string log = whole.finish();
    check(log == split.finish());
    check(log == llhttp_only.finish());
  }
  return 0;
}
