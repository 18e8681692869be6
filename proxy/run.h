#pragma once

#include <string>

#include "proxy/config.h"

namespace tracecar::proxy {

struct RunOptions {
  // Once every listener is bound, the bound ports are written here as one JSON object,
  // {"inbound":15006,"outbound":15001,"admin":15000,"pid":1234}, atomically (written to
  // PATH.tmp, then renamed), so a caller that asked for port 0 learns the real ones. Empty: none.
  std::string ready_file;
};

// `tracecar run`: loads the configuration (flags > env > file > defaults), starts the exporter
// (OTLP/HTTP, console or none) behind the batch processor, the data path's workers with the
// tracing and metrics observers, and the admin server on this thread's loop; then serves until
// SIGTERM or SIGINT. On the first signal /readyz turns to draining, the listeners close, requests
// in flight get timeouts.drain to finish, queued spans are exported within
// exporter.batch.export_timeout, and the result is 0. A second signal ends the process at once
// (128 + the signal number).
//
// Returns 2 for configuration errors (each printed, with a count), 1 when startup fails (a
// listener cannot be bound, the exporter's TLS files cannot be loaded...).
int runProxy(const ConfigFlags& flags, const RunOptions& options);

}  // namespace tracecar::proxy
