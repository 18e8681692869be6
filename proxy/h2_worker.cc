#include "proxy/h2_worker.h"

#include <vector>

#include "proxy/h2_downstream_session.h"

namespace tracecar::proxy {

void H2Worker::drain() noexcept {
  std::vector<H2DownstreamSession*> sessions(sessions_.begin(), sessions_.end());
  for (H2DownstreamSession* session : sessions) session->drain();
  pool_.drain();
}

void H2Worker::forceClose() noexcept {
  std::vector<H2DownstreamSession*> sessions(sessions_.begin(), sessions_.end());
  for (H2DownstreamSession* session : sessions) session->forceClose();
  pool_.closeAll();
}

}  // namespace tracecar::proxy
