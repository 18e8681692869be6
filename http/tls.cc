#include "http/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <absl/strings/cord.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace tracecar::http {
namespace {

struct CtxFree {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

// Empties OpenSSL's thread-local error queue on entry and exit, so that one session's failure
// is never read as the next session's (SSL_get_error looks at the queue first).
class ErrorQueueScope {
 public:
  ErrorQueueScope() noexcept { ERR_clear_error(); }
  ~ErrorQueueScope() { ERR_clear_error(); }
  ErrorQueueScope(const ErrorQueueScope&) = delete;
  ErrorQueueScope& operator=(const ErrorQueueScope&) = delete;
};

// OpenSSL's reasons for the last failure, oldest first, and an empty queue afterwards.
// verify_failed is set when one of them is "certificate verify failed".
std::string takeOpenSslErrors(bool* verify_failed = nullptr) {
  if (ERR_peek_error() == 0) return "no reason given by OpenSSL";
  std::string reasons;
  int kept = 0;
  while (const unsigned long code = ERR_get_error()) {
    if (verify_failed != nullptr && ERR_GET_LIB(code) == ERR_LIB_SSL &&
        ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      *verify_failed = true;
    }
    if (++kept > 4) continue;  // the first few carry the cause; drain the rest
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    if (!reasons.empty()) reasons += "; ";
    reasons += text;
  }
  return reasons;
}

constexpr char kTlsFileUrl[] = "type.tracecar.dev/tls-file";

absl::Status aboutFile(absl::Status status, TlsFile file) {
  status.SetPayload(kTlsFileUrl, absl::Cord(std::string(1, static_cast<char>(file))));
  return status;
}

// The reason a file could not be loaded, in plain words when there are some: the system's for
// a file that cannot be read, a line for a file that holds no PEM data; else OpenSSL's reasons.
std::string fileReason() {
  const unsigned long first = ERR_peek_error();
  if (first != 0 && ERR_GET_LIB(first) == ERR_LIB_SYS) {
    const int error = ERR_GET_REASON(first);
    ERR_clear_error();
    return std::strerror(error);
  }
  if (first != 0 && ERR_GET_LIB(first) == ERR_LIB_PEM && ERR_GET_REASON(first) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return "no PEM data in it (no \"-----BEGIN\" line)";
  }
  if (first != 0 && ERR_GET_LIB(first) == ERR_LIB_X509 &&
      ERR_GET_REASON(first) == X509_R_NO_CERTIFICATE_OR_CRL_FOUND) {
    ERR_clear_error();
    return "no certificate in it (want PEM \"-----BEGIN CERTIFICATE-----\" blocks)";
  }
  return takeOpenSslErrors();
}

absl::Status fileError(std::string_view what, const std::string& path, TlsFile file) {
  return aboutFile(absl::InvalidArgumentError("TLS: cannot load " + std::string(what) + " from " +
                                              path + ": " + fileReason()),
                   file);
}

// OpenSSL asks for a passphrase when a PEM block is encrypted; with no callback it reads one from
// the terminal, blocking a sidecar that has none to give. This one gives none, and notes that it
// was asked.
int refusePassphrase(char* /*buffer*/, int /*size*/, int /*writing*/, void* asked) noexcept {
  if (asked != nullptr) *static_cast<bool*>(asked) = true;
  return -1;
}

// The protocol list in ALPN wire format: each name prefixed by its length (RFC 7301).
absl::StatusOr<std::string> alpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) {
      return absl::InvalidArgumentError("TLS: ALPN protocol \"" + protocol +
                                        "\" must be 1 to 255 bytes long");
    }
    wire.push_back(static_cast<char>(protocol.size()));
    wire += protocol;
  }
  if (wire.size() > 0xffff) return absl::InvalidArgumentError("TLS: ALPN list too long");
  return wire;
}

CtxPtr newContext(const SSL_METHOD* method) {
  CtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) return ctx;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Renegotiation is a DoS lever and never needed by HTTP/1.1 or HTTP/2 peers we talk to.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  // Idle connections are the common case in a proxy: give back the 34 KiB of buffers.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx.get(), &refusePassphrase);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
  return ctx;
}

absl::Status keyMismatch(const std::string& cert_file, const std::string& key_file) {
  return aboutFile(absl::InvalidArgumentError("TLS: private key " + key_file +
                                              " does not match certificate " + cert_file + ": " +
                                              takeOpenSslErrors()),
                   TlsFile::kKeyFile);
}

absl::Status useCertificateAndKey(SSL_CTX* ctx, const std::string& cert_file,
                                  const std::string& key_file) {
  bool asked = false;  // for a passphrase: the key (or the certificate) is encrypted
  SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
  const int chain = SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str());
  const int key = chain == 1 ? SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM)
                             : 0;
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);  // `asked` ends here
  if (chain != 1) {
    if (asked) {
      ERR_clear_error();
      return aboutFile(absl::InvalidArgumentError("TLS: the certificate chain " + cert_file +
                                                  " is encrypted; encrypted PEM files are not "
                                                  "supported"),
                       TlsFile::kCertFile);
    }
    return fileError("certificate chain", cert_file, TlsFile::kCertFile);
  }
  if (key != 1) {
    if (asked) {
      ERR_clear_error();
      return aboutFile(
          absl::InvalidArgumentError("TLS: the private key " + key_file +
                                     " is encrypted; encrypted private keys are not supported "
                                     "(decrypt it: openssl pkey -in KEY -out PLAIN_KEY)"),
          TlsFile::kKeyFile);
    }
    // A key of the certificate's type is checked against it while loading.
    const unsigned long last = ERR_peek_last_error();
    if (ERR_GET_LIB(last) == ERR_LIB_X509 && ERR_GET_REASON(last) == X509_R_KEY_VALUES_MISMATCH) {
      return keyMismatch(cert_file, key_file);
    }
    return fileError("private key", key_file, TlsFile::kKeyFile);
  }
  // A key of another type lands in its own slot, leaving the certificate's slot without one.
  if (SSL_CTX_check_private_key(ctx) != 1) return keyMismatch(cert_file, key_file);
  return absl::OkStatus();
}

// The client's protocol the server prefers most; none agreed means no ALPN, not a failure.
int selectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_length,
               const unsigned char* offered, unsigned int offered_length, void* arg) noexcept {
  const auto* preferred = static_cast<const std::vector<std::string>*>(arg);
  for (const std::string& protocol : *preferred) {
    unsigned int i = 0;
    while (i < offered_length) {
      const unsigned int length = offered[i];
      if (length == 0 || length > offered_length - i - 1) break;  // malformed: stop here
      const unsigned char* name = offered + i + 1;
      if (length == protocol.size() && std::equal(name, name + length, protocol.begin(),
                                                  [](unsigned char a, char b) {
                                                    return a == static_cast<unsigned char>(b);
                                                  })) {
        *out = name;
        *out_length = static_cast<unsigned char>(length);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + length;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// host without the brackets of a URL-style IPv6 literal ("[::1]").
std::string_view unbracketed(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

bool isIpLiteral(const std::string& host) {
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 ||
         inet_pton(AF_INET6, host.c_str(), address) == 1;
}

}  // namespace

// ---- TlsContext ----------------------------------------------------------------------------

TlsFile tlsErrorFile(const absl::Status& status) {
  const auto payload = status.GetPayload(kTlsFileUrl);  // absl's optional
  if (!payload || payload->size() != 1) return TlsFile::kNone;
  const auto file = static_cast<TlsFile>(std::string(*payload)[0]);
  switch (file) {
    case TlsFile::kCaFile:
    case TlsFile::kCertFile:
    case TlsFile::kKeyFile:
      return file;
    case TlsFile::kNone:
      break;
  }
  return TlsFile::kNone;
}

TlsContext::TlsContext(SSL_CTX* ctx, bool server, std::vector<std::string> alpn,
                       std::string alpn_wire) noexcept
    : ctx_(ctx), server_(server), alpn_(std::move(alpn)), alpn_wire_(std::move(alpn_wire)) {}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::client(
    const TlsClientConfig& config) try {
  const ErrorQueueScope errors;
  absl::StatusOr<std::string> wire = alpnWire(config.alpn);
  if (!wire.ok()) return wire.status();
  if (config.cert_file.empty() != config.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS: a client certificate needs both cert_file and key_file (got cert_file \"" +
        config.cert_file + "\", key_file \"" + config.key_file + "\")");
  }

  CtxPtr ctx = newContext(TLS_client_method());
  if (!ctx) return absl::InternalError("TLS: SSL_CTX_new failed: " + takeOpenSslErrors());

  if (!config.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), config.ca_file.c_str(), nullptr) != 1) {
      return fileError("CA certificates", config.ca_file, TlsFile::kCaFile);
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    return absl::InternalError("TLS: cannot load the system's CA certificates: " +
                               takeOpenSslErrors());
  }
  if (!config.cert_file.empty()) {
    if (absl::Status s = useCertificateAndKey(ctx.get(), config.cert_file, config.key_file);
        !s.ok()) {
      return s;
    }
  }
  SSL_CTX_set_verify(ctx.get(), config.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  // Unlike the rest of OpenSSL, SSL_CTX_set_alpn_protos returns 0 on success.
  if (!wire->empty() &&
      SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(wire->data()),
                              static_cast<unsigned int>(wire->size())) != 0) {
    return absl::InternalError("TLS: cannot set the ALPN list: " + takeOpenSslErrors());
  }
  // ctx changes hands only once the TlsContext exists, so a bad_alloc never leaks it.
  std::unique_ptr<TlsContext> owner(new TlsContext(ctx.get(), false, config.alpn, *wire));
  ctx.release();
  return std::shared_ptr<TlsContext>(std::move(owner));
} catch (const std::bad_alloc&) {
  return absl::ResourceExhaustedError("TLS: out of memory");
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::server(
    const TlsServerConfig& config) try {
  const ErrorQueueScope errors;
  absl::StatusOr<std::string> wire = alpnWire(config.alpn);
  if (!wire.ok()) return wire.status();
  if (config.cert_file.empty() || config.key_file.empty()) {
    return absl::InvalidArgumentError("TLS: a server needs both cert_file and key_file");
  }

  CtxPtr ctx = newContext(TLS_server_method());
  if (!ctx) return absl::InternalError("TLS: SSL_CTX_new failed: " + takeOpenSslErrors());

  if (absl::Status s = useCertificateAndKey(ctx.get(), config.cert_file, config.key_file);
      !s.ok()) {
    return s;
  }
  // Without a session id context, resuming a session of a verified client is a hard error.
  static constexpr unsigned char kSessionIdContext[] = "tracecar";
  SSL_CTX_set_session_id_context(ctx.get(), kSessionIdContext, sizeof(kSessionIdContext) - 1);

  if (!config.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), config.client_ca_file.c_str(), nullptr) != 1) {
      return fileError("client CA certificates", config.client_ca_file, TlsFile::kCaFile);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str());
    if (names == nullptr) {
      return fileError("client CA names", config.client_ca_file, TlsFile::kCaFile);
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);  // takes ownership
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }

  std::unique_ptr<TlsContext> owner(new TlsContext(ctx.get(), true, config.alpn, *wire));
  ctx.release();
  std::shared_ptr<TlsContext> context(std::move(owner));
  if (!context->alpn_.empty()) {
    // The vector lives as long as the SSL_CTX: both belong to context.
    SSL_CTX_set_alpn_select_cb(context->ctx_, &selectAlpn, &context->alpn_);
  }
  return context;
} catch (const std::bad_alloc&) {
  return absl::ResourceExhaustedError("TLS: out of memory");
}

// ---- TlsSession ----------------------------------------------------------------------------

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context) noexcept
    : context_(std::move(context)) {}

TlsSession::~TlsSession() {
  const ErrorQueueScope errors;
  SSL_free(ssl_);  // frees both BIOs too
}

std::unique_ptr<TlsSession> TlsSession::create(std::shared_ptr<const TlsContext> context,
                                               bool client, std::string_view server_name,
                                               const std::vector<std::string>* alpn) noexcept {
  const ErrorQueueScope errors;
  try {
    const bool usable = context && context->isServer() != client;
    std::unique_ptr<TlsSession> session(new TlsSession(std::move(context)));
    if (!usable) {
      session->fail(client ? "TLS: a client session needs a client context"
                           : "TLS: a server session needs a server context");
      return session;
    }
    session->ssl_ = SSL_new(session->context_->native());
    if (session->ssl_ == nullptr) return nullptr;
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (in == nullptr || out == nullptr) {
      BIO_free(in);
      BIO_free(out);
      return nullptr;
    }
    // An empty in-BIO means "wait for more" (retry), not end of stream.
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(session->ssl_, in, out);  // the SSL owns both from here
    session->in_ = in;
    session->out_ = out;
    if (client) {
      SSL_set_connect_state(session->ssl_);
      session->configureServerName(server_name);
      if (alpn != nullptr) {
        absl::StatusOr<std::string> wire = alpnWire(*alpn);
        // Unlike the rest of OpenSSL, SSL_set_alpn_protos returns 0 on success.
        if (!wire.ok()) {
          session->fail(std::string(wire.status().message()));
        } else if (SSL_set_alpn_protos(session->ssl_,
                                       reinterpret_cast<const unsigned char*>(wire->data()),
                                       static_cast<unsigned int>(wire->size())) != 0) {
          session->fail("TLS: cannot set the ALPN list: " + takeOpenSslErrors());
        }
      }
    } else {
      SSL_set_accept_state(session->ssl_);
    }
    return session;
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

std::unique_ptr<TlsSession> TlsSession::client(std::shared_ptr<const TlsContext> context,
                                               std::string_view server_name) {
  return create(std::move(context), true, server_name, nullptr);
}

std::unique_ptr<TlsSession> TlsSession::client(std::shared_ptr<const TlsContext> context,
                                               std::string_view server_name,
                                               const std::vector<std::string>& alpn) {
  return create(std::move(context), true, server_name, &alpn);
}

std::unique_ptr<TlsSession> TlsSession::server(std::shared_ptr<const TlsContext> context) {
  return create(std::move(context), false, {}, nullptr);
}

void TlsSession::configureServerName(std::string_view server_name) {
  const std::string host(unbracketed(server_name));
  const bool verifying = (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0;
  if (host.find('\0') != std::string::npos) {
    fail("TLS: server name contains a NUL byte");
    return;
  }
  if (host.empty()) {
    // Verifying a chain without a name would accept any certificate the CA ever signed.
    if (verifying) fail("TLS: a server name is required to verify the server's certificate");
    return;
  }
  const bool ip = isIpLiteral(host);
  // SSL_set_tlsext_host_name, spelled out: the macro's C-style cast fails -Wold-style-cast.
  if (!ip && SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                      const_cast<char*>(host.c_str())) != 1) {
    fail("TLS: cannot send server name \"" + host + "\": " + takeOpenSslErrors());
    return;
  }
  if (!verifying) return;
  if (ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str()) != 1) {
      fail("TLS: cannot verify IP address \"" + host + "\": " + takeOpenSslErrors());
    }
    return;
  }
  SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl_, host.c_str()) != 1) {
    fail("TLS: cannot verify host name \"" + host + "\": " + takeOpenSslErrors());
  }
}

void TlsSession::start() noexcept {
  const ErrorQueueScope errors;
  if (state_ != State::kHandshaking) return;
  try {
    handshake();
  } catch (const std::bad_alloc&) {
    failOutOfMemory();
  }
}

bool TlsSession::receive(std::string_view ciphertext, std::string& plaintext) noexcept {
  const ErrorQueueScope errors;
  if (state_ == State::kFailed) return false;
  if (state_ == State::kClosed) return true;  // nothing follows close_notify
  try {
    while (!ciphertext.empty()) {
      size_t written = 0;
      if (BIO_write_ex(in_, ciphertext.data(), ciphertext.size(), &written) != 1) {
        failOutOfMemory();
        return false;
      }
      ciphertext.remove_prefix(written);
    }
    if (state_ == State::kHandshaking && !handshake()) return state_ != State::kFailed;
    readPlaintext(plaintext);
  } catch (const std::bad_alloc&) {
    failOutOfMemory();
  }
  return state_ != State::kFailed;
}

bool TlsSession::send(std::string_view plaintext) noexcept {
  const ErrorQueueScope errors;
  if (state_ == State::kFailed || state_ == State::kClosed || close_requested_) return false;
  if (plaintext.empty()) return true;
  try {
    if (state_ == State::kHandshaking) {
      pending_.append(plaintext);
      return true;
    }
    return write(plaintext);
  } catch (const std::bad_alloc&) {
    failOutOfMemory();
    return false;
  }
}

void TlsSession::close() noexcept {
  const ErrorQueueScope errors;
  if (close_requested_ || state_ == State::kFailed) return;
  close_requested_ = true;
  // During the handshake SSL_shutdown does nothing: close once pending_ has gone out.
  if (state_ != State::kHandshaking) shutdown();
}

bool TlsSession::hasOutgoing() const noexcept {
  return out_ != nullptr && BIO_ctrl_pending(out_) > 0;
}

void TlsSession::takeOutgoing(std::string& out) noexcept {
  if (out_ == nullptr) return;
  const ErrorQueueScope errors;
  const size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  const size_t old_size = out.size();
  try {
    out.resize(old_size + pending);
  } catch (const std::bad_alloc&) {
    failOutOfMemory();
    return;
  }
  size_t taken = 0;
  if (BIO_read_ex(out_, out.data() + old_size, pending, &taken) != 1) taken = 0;
  out.resize(old_size + taken);
}

std::string_view TlsSession::alpnSelected() const noexcept {
  if (ssl_ == nullptr) return {};
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  if (data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), length};
}

bool TlsSession::handshake() {
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    state_ = State::kOpen;
    if (!pending_.empty()) {
      const std::string pending = std::move(pending_);
      pending_.clear();
      if (!write(pending)) return false;
    }
    if (close_requested_) shutdown();
    return true;
  }
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // memory BIOs take any amount; kept for completeness
      return false;
    default:
      failFromOpenSsl("TLS handshake failed", rc);
      return false;
  }
}

void TlsSession::readPlaintext(std::string& plaintext) {
  char buffer[16 * 1024];
  while (state_ == State::kOpen) {
    size_t length = 0;
    const int rc = SSL_read_ex(ssl_, buffer, sizeof(buffer), &length);
    if (rc == 1) {
      plaintext.append(buffer, length);
      continue;
    }
    switch (SSL_get_error(ssl_, rc)) {
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:
        return;
      case SSL_ERROR_ZERO_RETURN:
        state_ = State::kClosed;
        return;
      default:
        failFromOpenSsl("TLS read failed", rc);
        return;
    }
  }
}

bool TlsSession::write(std::string_view plaintext) {
  while (!plaintext.empty()) {
    size_t written = 0;
    const int rc = SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &written);
    if (rc != 1) {
      failFromOpenSsl("TLS write failed", rc);
      return false;
    }
    plaintext.remove_prefix(written);
  }
  return true;
}

void TlsSession::shutdown() {
  if (shutdown_sent_ || state_ == State::kFailed || ssl_ == nullptr) return;
  shutdown_sent_ = true;
  // 0 (our close_notify queued, the peer's not seen yet) and 1 are both fine here.
  if (SSL_shutdown(ssl_) < 0) ERR_clear_error();
}

void TlsSession::failFromOpenSsl(std::string_view what, int rc) {
  const int code = SSL_get_error(ssl_, rc);
  const bool no_reason = ERR_peek_error() == 0;
  bool verify_failed = false;
  std::string reasons = takeOpenSslErrors(&verify_failed);
  std::string message(what);
  message += ": ";
  if (verify_failed) {
    message += "certificate verify failed: ";
    message += X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
    message += " (" + reasons + ")";
  } else if (code == SSL_ERROR_SYSCALL && no_reason) {
    message += "unexpected end of stream";
  } else {
    message += reasons;
  }
  fail(std::move(message));
}

void TlsSession::fail(std::string message) noexcept {
  state_ = State::kFailed;
  error_ = std::move(message);
  pending_.clear();
}

void TlsSession::failOutOfMemory() noexcept {
  state_ = State::kFailed;
  std::string().swap(pending_);
  try {
    error_ = "out of memory";  // fits the small-string buffer: no allocation
  } catch (...) {
  }
}

}  // namespace tracecar::http
