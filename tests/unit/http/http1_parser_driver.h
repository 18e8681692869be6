// The test driver of the HTTP/1.1 parser's tests: records every event as a string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "unit/http/header_text.h"

namespace tracecar::http::test_support {

using Kind = Http1Parser::Kind;
using Events = std::vector<std::string>;

// Records every event as a string and feeds bytes the way an owner does: what parse() did not
// consume is kept and handed in again, after resume() when a handler paused.
class Driver : public Http1ParserCallbacks {
 public:
  explicit Driver(Kind kind, const Http1Limits& limits = {}, bool direct_heads = true)
      : parser(kind, *this, limits) {
    parser.setDirectHeads(direct_heads);
  }

  bool onHead(Http1Head& head) override {
    std::string e = "head ";
    if (head.status == 0) {
      e += head.method + " " + head.target;
    } else {
      e += std::to_string(head.status) + " " + head.reason;
    }
    e += " HTTP/" + std::to_string(head.version_major) + "." + std::to_string(head.version_minor);
    events.push_back(e + describe(head.headers));
    heads.push_back(head);
    if (throw_in_head) throw std::bad_alloc();
    if (mark_connect && head.status / 100 == 2) head.upgrade = true;
    if (pause_in_head) parser.pause();
    return no_body;
  }
  void onBody(std::string_view data) override {
    events.push_back("body " + std::string(data));
    if (pause_in_body) parser.pause();
  }
  void onTrailers(HeaderMap& trailers) override {
    events.push_back("trailers" + describe(trailers));
    if (pause_in_trailers) parser.pause();
  }
  void onMessageComplete() override {
    events.push_back(parser.upgraded() ? "complete (upgraded)" : "complete");
    if (pause_in_complete) parser.pause();
  }

  // Returns what this call consumed, pending bytes included.
  size_t feed(std::string_view bytes) {
    pending.append(bytes);
    size_t total = 0;
    while (true) {
      const size_t n = parser.parse(pending);
      total += n;
      pending.erase(0, n);
      if (!parser.paused() || !auto_resume) break;
      parser.resume();
    }
    consumed += total;
    return total;
  }

  Http1Parser parser;
  Events events;
  std::vector<Http1Head> heads;
  std::string pending;
  size_t consumed = 0;
  bool auto_resume = true;
  bool no_body = false;
  bool mark_connect = false;
  bool throw_in_head = false;
  bool pause_in_head = false;
  bool pause_in_body = false;
  bool pause_in_trailers = false;
  bool pause_in_complete = false;
};

// Adjacent body events joined: how a body is cut depends on how the bytes arrived.
inline Events joined(const Events& events) {
  Events out;
  for (const std::string& e : events) {
    if (e.rfind("body ", 0) == 0 && !out.empty() && out.back().rfind("body ", 0) == 0) {
      out.back() += e.substr(5);
    } else {
      out.push_back(e);
    }
  }
  return out;
}

}  // namespace tracecar::http::test_support
