#include "http/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

namespace tracecar::http {
namespace {

using namespace std::chrono_literals;
using State = TlsSession::State;

// The test PKI, made once per build directory by tests/support/make_certs.sh. Empty on failure.
const std::string& certDir() {
  static const std::string dir = [] {
    std::filesystem::path source;
    if (const char* root = std::getenv("TRACECAR_SOURCE_DIR")) {
      source = std::filesystem::path(root) / "tests";
    } else {
      source = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
    }
    const std::string script = (source / "support" / "make_certs.sh").string();
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe");
    const std::string dest = (exe.parent_path() / "tls-certs").string();
    const std::string command = "bash '" + script + "' '" + dest + "'";
    return std::system(command.c_str()) == 0 ? dest : std::string();
  }();
  return dir;
}

std::string cert(std::string_view name) { return certDir() + "/" + std::string(name); }

TlsClientConfig trustingClient(std::vector<std::string> alpn = {}) {
  TlsClientConfig config;
  config.ca_file = cert("ca.pem");
  config.alpn = std::move(alpn);
  return config;
}

TlsServerConfig serverWith(std::string_view name, std::vector<std::string> alpn = {}) {
  TlsServerConfig config;
  config.cert_file = cert(std::string(name) + ".pem");
  config.key_file = cert(std::string(name) + ".key");
  config.alpn = std::move(alpn);
  return config;
}

std::shared_ptr<const TlsContext> clientContext(const TlsClientConfig& config) {
  absl::StatusOr<std::shared_ptr<TlsContext>> context = TlsContext::client(config);
  if (!context.ok()) {
    ADD_FAILURE() << context.status();
    return nullptr;
  }
  return *std::move(context);
}

std::shared_ptr<const TlsContext> serverContext(const TlsServerConfig& config) {
  absl::StatusOr<std::shared_ptr<TlsContext>> context = TlsContext::server(config);
  if (!context.ok()) {
    ADD_FAILURE() << context.status();
    return nullptr;
  }
  return *std::move(context);
}

struct Peer {
  std::unique_ptr<TlsSession> session;
  std::string received;  // plaintext
  bool receive_failed = false;
};

struct Pair {
  Peer client;
  Peer server;
};

Pair makePair(const TlsClientConfig& client_config, const TlsServerConfig& server_config,
              std::string_view server_name = "localhost") {
  Pair pair;
  pair.client.session = TlsSession::client(clientContext(client_config), server_name);
  pair.server.session = TlsSession::server(serverContext(server_config));
  return pair;
}

// Moves what from has to send into to, chunk bytes per receive. True if anything moved.
bool deliver(Peer& from, Peer& to, size_t chunk) {
  std::string wire;
  from.session->takeOutgoing(wire);
  std::string_view rest = wire;
  while (!rest.empty()) {
    const size_t n = std::min(chunk, rest.size());
    if (!to.session->receive(rest.substr(0, n), to.received)) to.receive_failed = true;
    rest.remove_prefix(n);
  }
  return !wire.empty();
}

// Moves ciphertext both ways until neither side has anything to send. False if it never settles.
bool pump(Pair& pair, size_t chunk = std::numeric_limits<size_t>::max()) {
  for (int round = 0; round < 10000; ++round) {
    const bool from_client = deliver(pair.client, pair.server, chunk);
    const bool from_server = deliver(pair.server, pair.client, chunk);
    if (!from_client && !from_server) return true;
  }
  return false;
}

void expectOpen(const Pair& pair) {
  EXPECT_EQ(pair.client.session->state(), State::kOpen) << pair.client.session->error();
  EXPECT_EQ(pair.server.session->state(), State::kOpen) << pair.server.session->error();
  EXPECT_EQ(pair.client.session->error(), "");
  EXPECT_EQ(pair.server.session->error(), "");
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(certDir().empty()) << "tests/support/make_certs.sh failed";
  }

  // A connected pair with default configs (the test CA, server.pem, name "localhost").
  Pair connected(TlsClientConfig client_config = trustingClient(),
                 TlsServerConfig server_config = serverWith("server")) {
    Pair pair = makePair(client_config, server_config);
    pair.client.session->start();
    EXPECT_TRUE(pump(pair));
    return pair;
  }
};

// ---- handshake and data ----------------------------------------------------------------------

TEST_F(TlsTest, HandshakeThenDataBothWays) {
  Pair pair = connected();
  expectOpen(pair);

  ASSERT_TRUE(pair.client.session->send("ping"));
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.server.received, "ping");

  ASSERT_TRUE(pair.server.session->send("pong"));
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.received, "pong");
  EXPECT_FALSE(pair.client.receive_failed);
  EXPECT_FALSE(pair.server.receive_failed);
}

TEST_F(TlsTest, StartPutsClientHelloInOutgoing) {
  Pair pair = makePair(trustingClient(), serverWith("server"));
  EXPECT_FALSE(pair.client.session->hasOutgoing());
  pair.client.session->start();
  EXPECT_TRUE(pair.client.session->hasOutgoing());
  std::string hello;
  pair.client.session->takeOutgoing(hello);
  ASSERT_GE(hello.size(), 6u);
  EXPECT_EQ(hello[0], 0x16);  // handshake record
  EXPECT_EQ(hello[5], 0x01);  // ClientHello
  EXPECT_FALSE(pair.client.session->hasOutgoing());
}

TEST_F(TlsTest, TakeOutgoingAppends) {
  Pair pair = makePair(trustingClient(), serverWith("server"));
  pair.client.session->start();
  std::string out = "kept";
  pair.client.session->takeOutgoing(out);
  EXPECT_EQ(out.substr(0, 4), "kept");
  EXPECT_GT(out.size(), 4u);
}

TEST_F(TlsTest, DataSentBeforeHandshakeCompletesIsDelivered) {
  Pair pair = makePair(trustingClient(), serverWith("server"));
  ASSERT_TRUE(pair.client.session->send("early from client, "));
  ASSERT_TRUE(pair.client.session->send("in two parts"));
  ASSERT_TRUE(pair.server.session->send("early from server"));
  EXPECT_EQ(pair.client.session->state(), State::kHandshaking);
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  expectOpen(pair);
  EXPECT_EQ(pair.server.received, "early from client, in two parts");
  EXPECT_EQ(pair.client.received, "early from server");
}

TEST_F(TlsTest, OneMebibyteEachWay) {
  std::string up(1 << 20, '\0');
  std::string down(1 << 20, '\0');
  for (size_t i = 0; i < up.size(); ++i) {
    up[i] = static_cast<char>((i * 131) % 251);
    down[i] = static_cast<char>((i * 17 + 3) % 253);
  }
  Pair pair = connected();
  ASSERT_TRUE(pair.client.session->send(up));
  ASSERT_TRUE(pair.server.session->send(down));
  ASSERT_TRUE(pump(pair));
  expectOpen(pair);
  ASSERT_EQ(pair.server.received.size(), up.size());
  ASSERT_EQ(pair.client.received.size(), down.size());
  EXPECT_TRUE(pair.server.received == up);
  EXPECT_TRUE(pair.client.received == down);
}

TEST_F(TlsTest, OneMebibyteSentBeforeHandshake) {
  const std::string body(1 << 20, 'x');
  Pair pair = makePair(trustingClient(), serverWith("server"));
  ASSERT_TRUE(pair.client.session->send(body));
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  expectOpen(pair);
  EXPECT_TRUE(pair.server.received == body);
}

TEST_F(TlsTest, CiphertextOneByteAtATime) {
  Pair pair = makePair(trustingClient(), serverWith("server"));
  ASSERT_TRUE(pair.client.session->send("byte by byte"));
  pair.client.session->start();
  ASSERT_TRUE(pump(pair, 1));
  expectOpen(pair);
  EXPECT_EQ(pair.server.received, "byte by byte");
}

TEST_F(TlsTest, EmptySendIsAccepted) {
  Pair pair = connected();
  EXPECT_TRUE(pair.client.session->send(""));
  EXPECT_FALSE(pair.client.session->hasOutgoing());
}

// ---- ALPN ------------------------------------------------------------------------------------

TEST_F(TlsTest, AlpnChoosesServerPreferenceWhenBothOfferH2) {
  Pair pair = connected(trustingClient({"http/1.1", "h2"}),
                        serverWith("server", {"h2", "http/1.1"}));
  expectOpen(pair);
  EXPECT_EQ(pair.client.session->alpnSelected(), "h2");
  EXPECT_EQ(pair.server.session->alpnSelected(), "h2");
}

TEST_F(TlsTest, AlpnFallsBackToTheOnlyCommonProtocol) {
  Pair pair = connected(trustingClient({"http/1.1"}), serverWith("server", {"h2", "http/1.1"}));
  expectOpen(pair);
  EXPECT_EQ(pair.client.session->alpnSelected(), "http/1.1");
  EXPECT_EQ(pair.server.session->alpnSelected(), "http/1.1");
}

TEST_F(TlsTest, AlpnNoneWhenNoOverlapAndHandshakeStillSucceeds) {
  Pair pair = connected(trustingClient({"h2"}), serverWith("server", {"http/1.1"}));
  expectOpen(pair);
  EXPECT_EQ(pair.client.session->alpnSelected(), "");
  EXPECT_EQ(pair.server.session->alpnSelected(), "");
}

TEST_F(TlsTest, AlpnNoneWhenClientOffersNothing) {
  Pair pair = connected(trustingClient(), serverWith("server", {"h2"}));
  expectOpen(pair);
  EXPECT_EQ(pair.client.session->alpnSelected(), "");
  EXPECT_EQ(pair.server.session->alpnSelected(), "");
}

// ---- server name and verification ----------------------------------------------------------

class TlsServerNameTest : public TlsTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(TlsServerNameTest, VerifiesNameAgainstCertificate) {
  Pair pair = makePair(trustingClient(), serverWith("server"), GetParam());
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  expectOpen(pair);
}

INSTANTIATE_TEST_SUITE_P(DnsAndIpLiterals, TlsServerNameTest,
                         ::testing::Values("localhost", "127.0.0.1", "::1", "[::1]"));

TEST_F(TlsTest, HostnameMismatchFailsNamingHostname) {
  Pair pair = makePair(trustingClient(), serverWith("wronghost"), "localhost");
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.session->state(), State::kFailed);
  EXPECT_TRUE(pair.client.receive_failed);
  EXPECT_NE(pair.client.session->error().find("certificate verify failed: hostname mismatch"),
            std::string::npos)
      << pair.client.session->error();
  // The client's alert reaches the server.
  EXPECT_EQ(pair.server.session->state(), State::kFailed);
}

TEST_F(TlsTest, NameAbsentFromCertificateFails) {
  Pair pair = makePair(trustingClient(), serverWith("server"), "example.com");
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.session->state(), State::kFailed);
  EXPECT_NE(pair.client.session->error().find("hostname mismatch"), std::string::npos)
      << pair.client.session->error();
}

TEST_F(TlsTest, IpAddressMismatchFails) {
  Pair pair = makePair(trustingClient(), serverWith("server"), "127.0.0.2");
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.session->state(), State::kFailed);
  EXPECT_NE(pair.client.session->error().find("IP address mismatch"), std::string::npos)
      << pair.client.session->error();
}

TEST_F(TlsTest, UntrustedCaFails) {
  Pair pair = makePair(trustingClient(), serverWith("other-server"));
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.session->state(), State::kFailed);
  EXPECT_NE(pair.client.session->error().find("certificate verify failed"), std::string::npos)
      << pair.client.session->error();
  EXPECT_EQ(pair.server.session->state(), State::kFailed);
}

TEST_F(TlsTest, WithoutCaFileTheSystemCasDoNotTrustTheTestCa) {
  TlsClientConfig config;  // no ca_file: the system's CAs
  Pair pair = makePair(config, serverWith("server"));
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.session->state(), State::kFailed);
  EXPECT_NE(pair.client.session->error().find("certificate verify failed"), std::string::npos)
      << pair.client.session->error();
}

TEST_F(TlsTest, InsecureClientConnectsToUntrustedServer) {
  TlsClientConfig config;
  config.verify_peer = false;
  Pair pair = connected(config, serverWith("other-server"));
  expectOpen(pair);
  ASSERT_TRUE(pair.client.session->send("anyway"));
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.server.received, "anyway");
}

TEST_F(TlsTest, InsecureClientIgnoresHostnameMismatch) {
  TlsClientConfig config = trustingClient();
  config.verify_peer = false;
  Pair pair = connected(config, serverWith("wronghost"));
  expectOpen(pair);
}

TEST_F(TlsTest, InsecureClientNeedsNoServerName) {
  TlsClientConfig config;
  config.verify_peer = false;
  Pair pair = makePair(config, serverWith("server"), "");
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  expectOpen(pair);
}

TEST_F(TlsTest, VerifyingClientWithoutServerNameFailsAtOnce) {
  auto session = TlsSession::client(clientContext(trustingClient()), "");
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->state(), State::kFailed);
  EXPECT_NE(session->error().find("server name"), std::string::npos) << session->error();
  session->start();
  EXPECT_FALSE(session->hasOutgoing());
  std::string plaintext;
  EXPECT_FALSE(session->receive("x", plaintext));
  EXPECT_FALSE(session->send("x"));
}

TEST_F(TlsTest, SessionWithWrongKindOfContextFails) {
  auto server_context = serverContext(serverWith("server"));
  auto client = TlsSession::client(server_context, "localhost");
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->state(), State::kFailed);
  auto server = TlsSession::server(clientContext(trustingClient()));
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->state(), State::kFailed);
  auto orphan = TlsSession::server(nullptr);
  ASSERT_NE(orphan, nullptr);
  EXPECT_EQ(orphan->state(), State::kFailed);
  orphan->close();
  EXPECT_EQ(orphan->alpnSelected(), "");
}

// ---- mutual TLS ------------------------------------------------------------------------------

TlsServerConfig requiringClientCertificates() {
  TlsServerConfig config = serverWith("server");
  config.client_ca_file = cert("ca.pem");
  return config;
}

TEST_F(TlsTest, MutualTlsRejectsClientWithoutCertificate) {
  Pair pair = connected(trustingClient(), requiringClientCertificates());
  EXPECT_EQ(pair.server.session->state(), State::kFailed);
  EXPECT_NE(pair.server.session->error().find("certificate"), std::string::npos)
      << pair.server.session->error();
  // TLS 1.3 clients finish first; the server's alert then fails them on arrival.
  EXPECT_EQ(pair.client.session->state(), State::kFailed);
  EXPECT_FALSE(pair.client.session->error().empty());
  EXPECT_EQ(pair.server.received, "");
}

TEST_F(TlsTest, MutualTlsAcceptsClientCertificateFromTrustedCa) {
  TlsClientConfig config = trustingClient();
  config.cert_file = cert("client.pem");
  config.key_file = cert("client.key");
  Pair pair = connected(config, requiringClientCertificates());
  expectOpen(pair);
  ASSERT_TRUE(pair.client.session->send("authenticated"));
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.server.received, "authenticated");
}

TEST_F(TlsTest, MutualTlsRejectsClientCertificateFromOtherCa) {
  TlsClientConfig config = trustingClient();
  config.cert_file = cert("other-server.pem");
  config.key_file = cert("other-server.key");
  Pair pair = connected(config, requiringClientCertificates());
  EXPECT_EQ(pair.server.session->state(), State::kFailed);
  EXPECT_NE(pair.server.session->error().find("certificate verify failed"), std::string::npos)
      << pair.server.session->error();
  EXPECT_EQ(pair.client.session->state(), State::kFailed);
}

// ---- close -----------------------------------------------------------------------------------

TEST_F(TlsTest, CloseNotifyMakesOtherSideClosed) {
  Pair pair = connected();
  ASSERT_TRUE(pair.client.session->send("bye"));
  pair.client.session->close();
  EXPECT_FALSE(pair.client.session->send("after close"));
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.server.received, "bye");
  EXPECT_EQ(pair.server.session->state(), State::kClosed);
  EXPECT_FALSE(pair.server.receive_failed);
  EXPECT_FALSE(pair.server.session->send("too late"));

  pair.server.session->close();
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.session->state(), State::kClosed);
  EXPECT_FALSE(pair.client.receive_failed);
}

TEST_F(TlsTest, ServerMayStillSendAfterClientClosedItsSide) {
  Pair pair = connected();
  pair.client.session->close();
  std::string close_notify;
  pair.client.session->takeOutgoing(close_notify);
  ASSERT_FALSE(close_notify.empty());
  // The server answers before it sees the close_notify; the client still reads it.
  ASSERT_TRUE(pair.server.session->send("late reply"));
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.client.received, "late reply");
  ASSERT_TRUE(pair.server.session->receive(close_notify, pair.server.received));
  EXPECT_EQ(pair.server.session->state(), State::kClosed);
}

TEST_F(TlsTest, CloseIsSentOnce) {
  Pair pair = connected();
  pair.client.session->close();
  std::string first;
  pair.client.session->takeOutgoing(first);
  EXPECT_FALSE(first.empty());
  pair.client.session->close();
  EXPECT_FALSE(pair.client.session->hasOutgoing());
}

TEST_F(TlsTest, CloseDuringHandshakeDeliversPendingDataThenCloses) {
  Pair pair = makePair(trustingClient(), serverWith("server"));
  ASSERT_TRUE(pair.client.session->send("last words"));
  pair.client.session->close();
  pair.client.session->start();
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.server.received, "last words");
  EXPECT_EQ(pair.server.session->state(), State::kClosed);
}

// ---- hostile input ---------------------------------------------------------------------------

TEST_F(TlsTest, PlainHttpRequestToServerFails) {
  auto server = TlsSession::server(serverContext(serverWith("server")));
  std::string plaintext;
  EXPECT_FALSE(server->receive("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", plaintext));
  EXPECT_EQ(server->state(), State::kFailed);
  EXPECT_FALSE(server->error().empty());
  EXPECT_EQ(plaintext, "");
  EXPECT_FALSE(server->receive("more", plaintext));
  EXPECT_FALSE(server->send("x"));
  server->close();  // no crash, no close_notify after a fatal error
}

TEST_F(TlsTest, RandomBytesToServerFail) {
  std::string junk(4096, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919 + 13) % 256);
  auto server = TlsSession::server(serverContext(serverWith("server")));
  std::string plaintext;
  EXPECT_FALSE(server->receive(junk, plaintext));
  EXPECT_EQ(server->state(), State::kFailed);
  EXPECT_FALSE(server->error().empty());
}

TEST_F(TlsTest, GarbageToClientFails) {
  auto client = TlsSession::client(clientContext(trustingClient()), "localhost");
  client->start();
  std::string hello;
  client->takeOutgoing(hello);
  std::string plaintext;
  EXPECT_FALSE(client->receive("HTTP/1.1 400 Bad Request\r\n\r\n", plaintext));
  EXPECT_EQ(client->state(), State::kFailed);
  EXPECT_FALSE(client->error().empty());
}

TEST_F(TlsTest, TamperedRecordFailsSession) {
  Pair pair = connected();
  ASSERT_TRUE(pair.client.session->send("integrity"));
  std::string wire;
  pair.client.session->takeOutgoing(wire);
  ASSERT_FALSE(wire.empty());
  wire.back() = static_cast<char>(wire.back() ^ 0x01);
  EXPECT_FALSE(pair.server.session->receive(wire, pair.server.received));
  EXPECT_EQ(pair.server.session->state(), State::kFailed);
  EXPECT_EQ(pair.server.received, "");
}

TEST_F(TlsTest, FailedSessionDoesNotDisturbTheNext) {
  auto broken = TlsSession::server(serverContext(serverWith("server")));
  std::string plaintext;
  ASSERT_FALSE(broken->receive("GET / HTTP/1.1\r\n\r\n", plaintext));
  const std::string first_error = broken->error();

  Pair pair = connected();
  expectOpen(pair);
  ASSERT_TRUE(pair.client.session->send("clean"));
  ASSERT_TRUE(pump(pair));
  EXPECT_EQ(pair.server.received, "clean");
  EXPECT_EQ(broken->error(), first_error);
}

// ---- context errors --------------------------------------------------------------------------

TEST_F(TlsTest, MissingCaFileIsNamed) {
  TlsClientConfig config;
  config.ca_file = "/nonexistent/tracecar-ca.pem";
  auto context = TlsContext::client(config);
  ASSERT_FALSE(context.ok());
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(context.status().message().find("/nonexistent/tracecar-ca.pem"), std::string::npos)
      << context.status();
  // The system's reason, in its words rather than OpenSSL's codes.
  EXPECT_EQ(context.status().message(),
            "TLS: cannot load CA certificates from /nonexistent/tracecar-ca.pem: No such file or "
            "directory");
  EXPECT_EQ(tlsErrorFile(context.status()), TlsFile::kCaFile);
}

TEST_F(TlsTest, MissingServerCertificateIsNamed) {
  TlsServerConfig config = serverWith("server");
  config.cert_file = "/nonexistent/tracecar-server.pem";
  auto context = TlsContext::server(config);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("/nonexistent/tracecar-server.pem"),
            std::string::npos)
      << context.status();
}

TEST_F(TlsTest, MissingServerKeyIsNamed) {
  TlsServerConfig config = serverWith("server");
  config.key_file = "/nonexistent/tracecar-server.key";
  auto context = TlsContext::server(config);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("/nonexistent/tracecar-server.key"),
            std::string::npos)
      << context.status();
}

TEST_F(TlsTest, MissingClientCaFileIsNamed) {
  TlsServerConfig config = serverWith("server");
  config.client_ca_file = "/nonexistent/tracecar-client-ca.pem";
  auto context = TlsContext::server(config);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("/nonexistent/tracecar-client-ca.pem"),
            std::string::npos)
      << context.status();
}

TEST_F(TlsTest, FileThatIsNotPemIsNamed) {
  TlsClientConfig config;
  config.ca_file = cert(".done");  // exists, holds no certificate
  auto context = TlsContext::client(config);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find(".done"), std::string::npos) << context.status();
}

TEST_F(TlsTest, ServerKeyNotMatchingCertificateIsError) {
  TlsServerConfig config = serverWith("server");
  config.key_file = cert("client.key");
  auto context = TlsContext::server(config);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("client.key does not match certificate"),
            std::string::npos)
      << context.status();
}

TEST_F(TlsTest, ClientKeyNotMatchingCertificateIsError) {
  TlsClientConfig config = trustingClient();
  config.cert_file = cert("client.pem");
  config.key_file = cert("server.key");
  auto context = TlsContext::client(config);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("server.key does not match certificate"),
            std::string::npos)
      << context.status();
}

// Each error says which of the configuration's files it is about, so that the configuration
// can name the setting that gave it.
TEST_F(TlsTest, ErrorsSayWhichFileTheyAreAbout) {
  TlsServerConfig mismatched = serverWith("server");
  mismatched.key_file = cert("client.key");
  EXPECT_EQ(tlsErrorFile(TlsContext::server(mismatched).status()), TlsFile::kKeyFile);
  TlsServerConfig no_cert = serverWith("server");
  no_cert.cert_file = cert(".done");
  const auto not_pem = TlsContext::server(no_cert);
  EXPECT_EQ(tlsErrorFile(not_pem.status()), TlsFile::kCertFile);
  EXPECT_NE(not_pem.status().message().find("no PEM data in it"), std::string::npos)
      << not_pem.status();
  TlsServerConfig client_ca = serverWith("server");
  client_ca.client_ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(tlsErrorFile(TlsContext::server(client_ca).status()), TlsFile::kCaFile);
  EXPECT_EQ(tlsErrorFile(TlsContext::client(trustingClient({"h2", ""})).status()), TlsFile::kNone);
}

// OpenSSL reads the passphrase of an encrypted key from the terminal, and waits there: a sidecar
// has none to give. The key is refused instead, by name, whoever loads it.
TEST_F(TlsTest, EncryptedKeyIsRefusedWithoutAskingForAPassphrase) {
  char dir[] = "/tmp/tracecar-tls-encrypted-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string encrypted = std::string(dir) + "/server.key";
  const std::string command = "openssl pkey -in " + cert("server.key") +
                              " -aes256 -passout pass:secret -out " + encrypted + " 2>/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  const std::string refused =
      "TLS: the private key " + encrypted +
      " is encrypted; encrypted private keys are not supported (decrypt it: openssl pkey -in KEY "
      "-out PLAIN_KEY)";
  TlsServerConfig server = serverWith("server");
  server.key_file = encrypted;
  const auto as_server = TlsContext::server(server);
  EXPECT_EQ(as_server.status().message(), refused);
  EXPECT_EQ(tlsErrorFile(as_server.status()), TlsFile::kKeyFile);
  TlsClientConfig client = trustingClient();
  client.cert_file = cert("server.pem");
  client.key_file = encrypted;
  EXPECT_EQ(TlsContext::client(client).status().message(), refused);
  std::filesystem::remove_all(dir);
}

TEST_F(TlsTest, ClientCertificateWithoutKeyIsError) {
  TlsClientConfig config = trustingClient();
  config.cert_file = cert("client.pem");
  EXPECT_FALSE(TlsContext::client(config).ok());
}

TEST_F(TlsTest, ServerWithoutCertificateIsError) {
  EXPECT_FALSE(TlsContext::server(TlsServerConfig{}).ok());
}

TEST_F(TlsTest, AlpnNamesMustBeOneTo255Bytes) {
  EXPECT_FALSE(TlsContext::client(trustingClient({"h2", ""})).ok());
  EXPECT_FALSE(TlsContext::server(serverWith("server", {std::string(256, 'a')})).ok());
  EXPECT_TRUE(TlsContext::server(serverWith("server", {std::string(255, 'a')})).ok());
}

TEST_F(TlsTest, ContextsAreMarkedClientOrServer) {
  EXPECT_FALSE(clientContext(trustingClient())->isServer());
  EXPECT_TRUE(serverContext(serverWith("server"))->isServer());
}

// ---- a real peer: openssl s_server -rev --------------------------------------------------------

constexpr auto kPeerTimeout = 10s;

int msLeft(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// A free port on 127.0.0.1 at the time of asking.
int freePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// `openssl s_server -rev` on 127.0.0.1: answers each line with the line reversed.
class OpenSslServer {
 public:
  OpenSslServer() = default;
  OpenSslServer(const OpenSslServer&) = delete;
  OpenSslServer& operator=(const OpenSslServer&) = delete;
  ~OpenSslServer() { stop(); }

  // Starts the server and waits until it accepts. Retries on a port taken in the meantime.
  bool start(const std::vector<std::string>& extra_args, std::string& log) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = freePort();
      if (port_ > 0 && spawn(extra_args) && waitForAccept(log)) return true;
      stop();
    }
    return false;
  }

  int port() const { return port_; }

 private:
  bool spawn(const std::vector<std::string>& extra_args) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return false;
    std::vector<std::string> args = {"openssl",
                                     "s_server",
                                     "-accept",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "-cert",
                                     cert("server.pem"),
                                     "-key",
                                     cert("server.key"),
                                     "-rev",
                                     "-naccept",
                                     "1"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    const int rc = posix_spawnp(&pid_, "openssl", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    output_ = pipe_fds[0];
    if (rc != 0) pid_ = -1;
    return rc == 0;
  }

  // s_server prints "ACCEPT" once it listens; EOF means it gave up (port taken, bad args).
  bool waitForAccept(std::string& log) {
    const auto deadline = std::chrono::steady_clock::now() + kPeerTimeout;
    std::string seen;
    while (seen.find("ACCEPT\n") == std::string::npos) {
      pollfd p{output_, POLLIN, 0};
      if (poll(&p, 1, msLeft(deadline)) <= 0) break;
      char buffer[512];
      const ssize_t n = read(output_, buffer, sizeof(buffer));
      if (n <= 0) break;
      seen.append(buffer, static_cast<size_t>(n));
    }
    log += seen;
    return seen.find("ACCEPT\n") != std::string::npos;
  }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (output_ >= 0) {
      ::close(output_);
      output_ = -1;
    }
  }

  int port_ = -1;
  pid_t pid_ = -1;
  int output_ = -1;
};

int connectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool sendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

class TlsRealPeerTest : public TlsTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(TlsRealPeerTest, OpenSslServerReversesLine) {
  OpenSslServer peer;
  std::string log;
  ASSERT_TRUE(peer.start({GetParam()}, log)) << "openssl s_server did not start:\n" << log;
  const int fd = connectLoopback(peer.port());
  ASSERT_GE(fd, 0) << "connect to 127.0.0.1:" << peer.port();

  auto session = TlsSession::client(clientContext(trustingClient({"http/1.1"})), "localhost");
  ASSERT_TRUE(session->send("hello\n"));
  session->start();
  std::string plaintext;
  std::string wire;
  const auto deadline = std::chrono::steady_clock::now() + kPeerTimeout;
  while (plaintext.find('\n') == std::string::npos && session->state() != State::kFailed) {
    wire.clear();
    session->takeOutgoing(wire);
    if (!sendAll(fd, wire)) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, msLeft(deadline)) <= 0) break;
    char buffer[4096];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    session->receive({buffer, static_cast<size_t>(n)}, plaintext);
  }
  EXPECT_EQ(session->state(), State::kOpen) << session->error();
  EXPECT_EQ(plaintext, "olleh\n");
  EXPECT_EQ(session->alpnSelected(), "");  // s_server was given no -alpn

  session->close();
  wire.clear();
  session->takeOutgoing(wire);
  EXPECT_FALSE(wire.empty());
  sendAll(fd, wire);
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(ProtocolVersions, TlsRealPeerTest,
                         ::testing::Values("-tls1_2", "-tls1_3"),
                         [](const auto& test) { return std::string(test.param + 1); });

}  // namespace
}  // namespace tracecar::http
