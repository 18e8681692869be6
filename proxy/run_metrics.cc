#include "proxy/run_metrics.h"

#include <optional>
#include <string_view>

#include "proxy/traced_stream_observer.h"

namespace tracecar::proxy {
namespace {

std::optional<std::string_view> labelValue(const prometheus::ClientMetric& metric,
                                           std::string_view name) {
  for (const prometheus::ClientMetric::Label& label : metric.label) {
    if (label.name == name) return label.value;
  }
  return std::nullopt;
}

std::optional<ListenerRole> dataPathListener(const prometheus::ClientMetric& metric) {
  const std::optional<std::string_view> listener = labelValue(metric, "listener");
  if (!listener) return std::nullopt;
  for (size_t r = 0; r < kListenerRoleCount; ++r) {
    const ListenerRole role = static_cast<ListenerRole>(r);
    if (*listener == listenerRoleName(role)) return role;
  }
  return std::nullopt;  // "admin"
}

}  // namespace

void addDataPathFigures(const DataPathSnapshot& snapshot,
                        std::vector<prometheus::MetricFamily>& families) {
  for (prometheus::MetricFamily& family : families) {
    if (family.name == "tracecar_connections_open") {
      for (prometheus::ClientMetric& metric : family.metric) {
        if (const std::optional<ListenerRole> role = dataPathListener(metric)) {
          metric.gauge.value += static_cast<double>(
              snapshot.connections_open[static_cast<size_t>(*role)]);
        }
      }
    } else if (family.name == "tracecar_connections_total") {
      for (prometheus::ClientMetric& metric : family.metric) {
        if (const std::optional<ListenerRole> role = dataPathListener(metric)) {
          metric.counter.value += static_cast<double>(
              snapshot.connections_total[static_cast<size_t>(*role)]);
        }
      }
    } else if (family.name == "tracecar_requests_rejected_total") {
      for (prometheus::ClientMetric& metric : family.metric) {
        const std::optional<ListenerRole> role = dataPathListener(metric);
        const std::optional<std::string_view> reason = labelValue(metric, "reason");
        if (!role || !reason) continue;
        for (size_t k = 0; k < kLocalReplyReasonCount; ++k) {
          const LocalReplyReason local = static_cast<LocalReplyReason>(k);
          if (!repliedBeforeObservers(local)) continue;
          const std::optional<RejectReason> mapped = rejectReasonOf(local);
          if (mapped && rejectReasonLabel(*mapped) == *reason) {
            metric.counter.value += static_cast<double>(snapshot.localReplies(*role, local));
          }
        }
      }
    }
  }
}

std::vector<prometheus::MetricFamily> RunMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> families = metrics_.Collect();
  if (snapshot_) addDataPathFigures(snapshot_(), families);
  return families;
}

}  // namespace tracecar::proxy
