#pragma once

#include <cstdint>

namespace tracecar::proxy {

// Why the exchange with the upstream failed. Low-cardinality: semconv::errorType() names each
// as an error.type value.
enum class UpstreamFailure : uint8_t {
  kConnectionRefused,  // "connection_refused": connect() refused, or failed otherwise
  kConnectTimeout,     // "connect_timeout": no connection within the connect timeout
  kResponseTimeout,    // "response_timeout": no complete response head in time
  kConnectionReset,    // "connection_reset": reset or closed before the response was complete
  kBadResponse,        // "bad_response": the response could not be parsed
  kResponseTooLarge,   // "response_too_large": response head over the limits
  kResolveFailed,      // "resolve_failed": the upstream's name did not resolve
  kTlsFailed,          // "tls_handshake_failed": TLS to the upstream failed (certificate, name...)
  kLoopDetected,       // "loop_detected": every address of the upstream is one of tracecar's
                       // own listeners (WorkerContext::isOwnListener)
  kOther,              // "_OTHER"
};

}  // namespace tracecar::proxy
