#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// OpenSSL types, so that users of this header need not include OpenSSL.
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace tracecar::http {

struct TlsClientConfig {
  std::string ca_file;           // PEM bundle to verify the server; empty: the system's CAs
  std::string cert_file;         // client certificate (mTLS); with key_file, or neither
  std::string key_file;
  bool verify_peer = true;       // verify the chain and the host name
  std::vector<std::string> alpn;  // offered protocols, e.g. {"h2", "http/1.1"}; empty: none
};

struct TlsServerConfig {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;
  std::string client_ca_file;     // non-empty: require a client certificate signed by it
  std::vector<std::string> alpn;  // supported protocols in preference order
};

// Which file of its configuration an error of TlsContext::client or server is about (the
// message names the file too), so that a caller can name the setting that gave the file:
// kCaFile (ca_file, or a server's client_ca_file), kCertFile, kKeyFile; kNone for other errors.
enum class TlsFile : uint8_t { kNone, kCaFile, kCertFile, kKeyFile };
TlsFile tlsErrorFile(const absl::Status& status);

// An SSL_CTX built from files. Errors name the file and the reason: a system error as the system
// words it ("No such file or directory"), else OpenSSL's. An encrypted private key is refused
// (tracecar has no passphrase to give, and OpenSSL would otherwise ask for one on the terminal).
class TlsContext {
 public:
  static absl::StatusOr<std::shared_ptr<TlsContext>> client(const TlsClientConfig& config);
  static absl::StatusOr<std::shared_ptr<TlsContext>> server(const TlsServerConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* native() const noexcept { return ctx_; }
  bool isServer() const noexcept { return server_; }

 private:
  TlsContext(SSL_CTX* ctx, bool server, std::vector<std::string> alpn,
             std::string alpn_wire) noexcept;
  SSL_CTX* ctx_;
  bool server_;
  std::vector<std::string> alpn_;  // server: read by the ALPN selection callback
  std::string alpn_wire_;  // ALPN protocol list in wire format (length-prefixed)
  friend class TlsSession;
};

// One TLS connection over memory BIOs: the owner moves ciphertext between the session and its
// socket (libuv does the reads and writes), and plaintext between the session and the codec.
// No I/O, no blocking, never throws.
class TlsSession {
 public:
  enum class State : uint8_t { kHandshaking, kOpen, kClosed, kFailed };

  // server_name: sent as SNI (unless it is an IP literal) and, when the context verifies,
  // checked against the certificate (DNS name, or IP address for an IP literal; "[::1]" is
  // taken as "::1"). A verifying context needs a non-empty name.
  // A wrong kind of context, or an unusable name, gives a session that is already kFailed with
  // error() set; nullptr only when memory runs out.
  static std::unique_ptr<TlsSession> client(std::shared_ptr<const TlsContext> context,
                                            std::string_view server_name);
  // The same, offering alpn (e.g. {"h2"}) instead of the context's list.
  static std::unique_ptr<TlsSession> client(std::shared_ptr<const TlsContext> context,
                                            std::string_view server_name,
                                            const std::vector<std::string>& alpn);
  static std::unique_ptr<TlsSession> server(std::shared_ptr<const TlsContext> context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Client: puts the ClientHello into the outgoing ciphertext.
  void start() noexcept;

  // Ciphertext received from the peer. Appends decrypted application data to plaintext.
  // Returns false once the session failed (state() == kFailed, error() says why); outgoing
  // ciphertext may then hold an alert worth sending. A close_notify from the peer makes the
  // state kClosed.
  bool receive(std::string_view ciphertext, std::string& plaintext) noexcept;

  // Application data to encrypt; held until the handshake completes. False when failed/closed.
  bool send(std::string_view plaintext) noexcept;

  // Sends close_notify, once: during the handshake, after the handshake and the data held for
  // it. send() is refused from then on; data from the peer is still read until its own
  // close_notify.
  void close() noexcept;

  // Ciphertext waiting to be written to the socket. The owner moves it out (appending it to
  // out) after every receive, send, start and close.
  bool hasOutgoing() const noexcept;
  void takeOutgoing(std::string& out) noexcept;

  // Plaintext given to send() before the handshake completed, waiting to be encrypted.
  size_t pendingPlaintext() const noexcept { return pending_.size(); }

  State state() const noexcept { return state_; }
  const std::string& error() const noexcept { return error_; }
  std::string_view alpnSelected() const noexcept;  // empty when none was agreed

 private:
  explicit TlsSession(std::shared_ptr<const TlsContext> context) noexcept;
  static std::unique_ptr<TlsSession> create(std::shared_ptr<const TlsContext> context,
                                            bool client, std::string_view server_name,
                                            const std::vector<std::string>* alpn) noexcept;
  void configureServerName(std::string_view server_name);
  bool handshake();  // true once complete
  void readPlaintext(std::string& plaintext);
  bool write(std::string_view plaintext);
  void shutdown();
  void failFromOpenSsl(std::string_view what, int rc);
  void fail(std::string message) noexcept;
  void failOutOfMemory() noexcept;

  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_ = nullptr;  // owns in_ and out_; null only in a session that failed at birth
  BIO* in_ = nullptr;   // ciphertext from the peer, read by OpenSSL
  BIO* out_ = nullptr;  // ciphertext from OpenSSL, to the peer
  State state_ = State::kHandshaking;
  bool close_requested_ = false;  // close() was called; honoured once the handshake completes
  bool shutdown_sent_ = false;
  std::string error_;
  std::string pending_;  // plaintext sent before the handshake completed
};

}  // namespace tracecar::http
