// A client H2Session and a server H2Session wired back to back in memory, with a recorder of
// their events, for the H2Session tests.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/h2_session.h"
#include "unit/http/header_text.h"

namespace tracecar::http::h2_test {

using Kind = H2Session::Kind;

using test_support::describe;

// Records events as strings; data of one stream in a row is merged, so the sequence does not
// depend on how bytes were cut.
class Recorder : public H2SessionCallbacks {
 public:
  void onHeaders(int32_t id, H2Head& head) override {
    std::string e = "headers " + std::to_string(id);
    if (head.status != 0) {
      e += " " + std::to_string(head.status);
    } else {
      e += " " + head.method + " " + head.scheme + " " + head.authority + " " + head.path;
    }
    events.push_back(e + describe(head.headers));
    heads[id] = head.header_list_bytes;
    received[id] = head;
  }
  void onData(int32_t id, std::string_view data) override {
    const std::string prefix = "data " + std::to_string(id) + " ";
    if (!events.empty() && events.back().rfind(prefix, 0) == 0) {
      events.back() += data;
    } else {
      events.push_back(prefix + std::string(data));
    }
    bodies[id] += data;
    unconsumed[id] += data.size();
    if (auto_consume && session != nullptr) {
      session->consume(id, data.size());
      unconsumed[id] = 0;
    }
  }
  void onTrailers(int32_t id, HeaderMap& trailers) override {
    events.push_back("trailers " + std::to_string(id) + describe(trailers));
  }
  void onEndStream(int32_t id) override { events.push_back("end " + std::to_string(id)); }
  void onStreamClose(int32_t id, H2ErrorCode code, H2CloseCause cause) override {
    events.push_back("close " + std::to_string(id) + " " + std::string(h2ErrorCodeName(code)) +
                     " " + std::string(h2CloseCauseName(cause)));
  }
  void onGoaway(int32_t last, H2ErrorCode code, std::string_view debug) override {
    events.push_back("goaway " + std::to_string(last) + " " + std::string(h2ErrorCodeName(code)) +
                     (debug.empty() ? "" : " ") + std::string(debug));
  }
  void onConnectionError(std::string_view reason) override {
    events.push_back("error " + std::string(reason));
  }
  void onPeerSettings() override { ++peer_settings; }

  // Events whose text starts with prefix.
  std::vector<std::string> only(std::string_view prefix) const {
    std::vector<std::string> out;
    for (const auto& e : events) {
      if (e.rfind(prefix, 0) == 0) out.push_back(e);
    }
    return out;
  }

  H2Session* session = nullptr;
  bool auto_consume = true;
  std::vector<std::string> events;
  std::map<int32_t, std::string> bodies;
  std::map<int32_t, size_t> unconsumed;
  std::map<int32_t, size_t> heads;
  std::map<int32_t, H2Head> received;  // the last head of each stream, as it came
  int peer_settings = 0;
};

// A client and a server session wired back to back in memory.
class Pair {
 public:
  explicit Pair(const H2Settings& server_settings = {}, const H2Settings& client_settings = {}) {
    client = *H2Session::create(Kind::kClient, client_events, client_settings);
    server = *H2Session::create(Kind::kServer, server_events, server_settings);
    client_events.session = client.get();
    server_events.session = server.get();
  }

  // Moves bytes both ways until neither side has any; one_byte feeds them a byte per call.
  // Returns how many rounds it took (bounded).
  int pump(bool one_byte = false) {
    for (int round = 0; round < 10000; ++round) {
      std::string c2s;
      std::string s2c;
      EXPECT_TRUE(client->send(c2s).ok());
      EXPECT_TRUE(server->send(s2c).ok());
      if (c2s.empty() && s2c.empty()) return round;
      c2s_bytes += c2s.size();
      s2c_bytes += s2c.size();
      feed(*server, c2s, one_byte);
      feed(*client, s2c, one_byte);
    }
    ADD_FAILURE() << "the sessions never went quiet";
    return -1;
  }

  static void feed(H2Session& session, std::string_view bytes, bool one_byte) {
    if (!one_byte) {
      session.receive(bytes).IgnoreError();
      return;
    }
    for (char c : bytes) session.receive(std::string_view(&c, 1)).IgnoreError();
  }

  Recorder client_events;
  Recorder server_events;
  std::unique_ptr<H2Session> client;
  std::unique_ptr<H2Session> server;
  size_t c2s_bytes = 0;
  size_t s2c_bytes = 0;
};

inline H2Head request(std::string method, std::string path) {
  H2Head head;
  head.method = std::move(method);
  head.scheme = "http";
  head.authority = "example.test";
  head.path = std::move(path);
  return head;
}

inline H2Head response(int status) {
  H2Head head;
  head.status = status;
  return head;
}

}  // namespace tracecar::http::h2_test
