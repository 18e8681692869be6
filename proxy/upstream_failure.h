#pragma once

#include <cstdint>

namespace tracecar::proxy {

// Why the exchange with the upstream failed. Low-cardinality: semconv::errorType() names each
// as an error.type value.
enum class UpstreamFailure : uint8_t {
  kConnectionRefused,  // "connection_refused": connect() refused (ECONNREFUSED)
  kConnectTimeout,     // "connect_timeout": no connection within the connect timeout
  kResponseTimeout,    // "response_timeout": no complete response head in time
  kConnectionReset,    // "connection_reset": reset or closed before the response was complete
  kBadResponse,        // "bad_response": the response could not be parsed
  kResponseTooLarge,   // "response_too_large": response head over the limits
  kResolveFailed,      // "resolve_failed": the upstream's name did not resolve
  kTlsFailed,          // "tls_handshake_failed": TLS to the upstream failed (certificate, name...)
  kLoopDetected,       // "loop_detected": every address of the upstream is one of tracecar's
                       // own listeners (WorkerContext::isOwnListener)
  kHostUnreachable,    // "host_unreachable": no route to the upstream (ENETUNREACH, EHOSTUNREACH)
  kConnectFailed,      // "connect_failed": connect() failed otherwise (a firewall rule: EACCES...)
  kLocalAddress,       // "local_address_unavailable": no local address or port to connect from
                       // (EADDRNOTAVAIL: the ephemeral ports used up, or no such address family)
  kFileDescriptors,    // "too_many_open_files": tracecar is at its file descriptor limit
                       // (EMFILE, ENFILE); 503, since it says nothing of the upstream
  kOther,              // "_OTHER"
};

// The failure a connect attempt's libuv status (negative errno) stands for; out of file
// descriptors, also the process's throttled warning (warnOutOfFileDescriptors).
UpstreamFailure connectFailureOf(int uv_status) noexcept;
// The same for a name lookup's status: resolve_failed, unless the lookup itself had no
// descriptor (getaddrinfo opens files and sockets).
UpstreamFailure resolveFailureOf(int uv_status) noexcept;

}  // namespace tracecar::proxy
