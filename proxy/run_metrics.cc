#include "proxy/run_metrics.h"

#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

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

prometheus::MetricFamily counterFamily(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Counter;
  return family;
}

void addCounter(prometheus::MetricFamily& family,
                std::vector<prometheus::ClientMetric::Label> labels, uint64_t value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.counter.value = static_cast<double>(value);
  family.metric.push_back(std::move(metric));
}

prometheus::MetricFamily gaugeFamily(std::string name, std::string help, int64_t value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric metric;
  metric.gauge.value = static_cast<double>(value);
  family.metric.push_back(std::move(metric));
  return family;
}

// Timeouts, the upstream pools, tunnels and what the data path holds in memory
// (docs/metrics.md).
void addPoolFamilies(const DataPathSnapshot& snapshot,
                     std::vector<prometheus::MetricFamily>& families) {
  prometheus::MetricFamily timeouts = counterFamily(
      "tracecar_timeouts_total",
      "Data path timers that fired, by timeout (its key under timeouts: in the configuration).");
  for (size_t t = 0; t < kDataPathTimeoutCount; ++t) {
    const auto which = static_cast<DataPathTimeout>(t);
    addCounter(timeouts, {{"timeout", std::string(dataPathTimeoutName(which))}},
               snapshot.timeouts[t]);
  }
  families.push_back(std::move(timeouts));
  const std::tuple<const char*, const char*, uint64_t> counters[] = {
      {"tracecar_upstream_connections_opened_total",
       "Upstream connections established (HTTP/1.1 and HTTP/2).", snapshot.upstream_connects},
      {"tracecar_upstream_connection_reuses_total",
       "Requests sent on a kept-alive HTTP/1.1 upstream connection from the pool.",
       snapshot.upstream_reuses},
      {"tracecar_upstream_retries_total",
       "Requests sent again on a fresh upstream connection after a kept-alive one failed before "
       "the request's body or any of the response had gone through.",
       snapshot.upstream_retries},
      {"tracecar_upstream_failures_total",
       "Exchanges that failed on the upstream side (refused, reset, timed out, bad response).",
       snapshot.upstream_failures},
      {"tracecar_tunnels_total", "Upgrade (WebSocket) and CONNECT tunnels opened.",
       snapshot.tunnels},
  };
  for (const auto& [name, help, value] : counters) {
    prometheus::MetricFamily family = counterFamily(name, help);
    addCounter(family, {}, value);
    families.push_back(std::move(family));
  }
  families.push_back(gaugeFamily("tracecar_upstream_connections_open",
                                 "Upstream connections open (HTTP/1.1 and HTTP/2).",
                                 snapshot.upstream_connections_open));
  families.push_back(gaugeFamily("tracecar_upstream_connections_idle",
                                 "HTTP/1.1 upstream connections idle in the pools.",
                                 snapshot.upstream_connections_idle));
  families.push_back(gaugeFamily(
      "tracecar_buffered_bytes",
      "Bytes read but not yet written on by the data path (parser leftovers and write queues).",
      snapshot.buffered_bytes));
  families.push_back(gaugeFamily(
      "tracecar_buffered_bytes_peak",
      "The highest tracecar_buffered_bytes of any worker since the start.",
      snapshot.buffered_bytes_peak));
}

// Sniffing, opaque tunnels and refused connections (docs/transparent-mode.md).
void addTransparentFamilies(const DataPathSnapshot& snapshot,
                            std::vector<prometheus::MetricFamily>& families) {
  prometheus::MetricFamily sniffed = counterFamily(
      "tracecar_sniffed_connections_total",
      "Downstream connections by the protocol their first bytes showed.");
  prometheus::MetricFamily tunnels = counterFamily(
      "tracecar_opaque_tunnels_total",
      "Connections that are not HTTP/1.x relayed as opaque TCP tunnels, by sniffed protocol.");
  prometheus::MetricFamily bytes = counterFamily(
      "tracecar_opaque_tunnel_bytes_total",
      "Bytes relayed through opaque TCP tunnels, by sniffed protocol and direction.");
  prometheus::MetricFamily refused = counterFamily(
      "tracecar_connections_refused_total",
      "Downstream connections closed with a reset without being forwarded.");
  for (size_t r = 0; r < kListenerRoleCount; ++r) {
    const auto role = static_cast<ListenerRole>(r);
    const std::string listener(listenerRoleName(role));
    for (size_t p = 0; p < kSniffedProtocolCount; ++p) {
      const auto protocol = static_cast<SniffedProtocol>(p);
      const std::string name(sniffedProtocolName(protocol));
      addCounter(sniffed, {{"listener", listener}, {"protocol", name}},
                 snapshot.sniffedCount(role, protocol));
      if (protocol == SniffedProtocol::kHttp1) continue;  // never an opaque tunnel
      addCounter(tunnels, {{"listener", listener}, {"protocol", name}},
                 snapshot.opaqueTunnels(role, protocol));
      for (size_t d = 0; d < kTunnelDirectionCount; ++d) {
        const auto direction = static_cast<TunnelDirection>(d);
        addCounter(bytes,
                   {{"direction", std::string(tunnelDirectionName(direction))},
                    {"listener", listener},
                    {"protocol", name}},
                   snapshot.opaqueBytes(role, protocol, direction));
      }
    }
    for (size_t i = 0; i < kConnectionRefusalCount; ++i) {
      const auto why = static_cast<ConnectionRefusal>(i);
      addCounter(refused,
                 {{"listener", listener}, {"reason", std::string(connectionRefusalName(why))}},
                 snapshot.refusals(role, why));
    }
  }
  families.push_back(std::move(sniffed));
  families.push_back(std::move(tunnels));
  families.push_back(std::move(bytes));
  families.push_back(std::move(refused));
}

// HTTP/2 (docs/http2.md): the codec's figures per side, summed as connections close, and the
// proxy's relays.
void addH2Families(const DataPathSnapshot& snapshot,
                   std::vector<prometheus::MetricFamily>& families) {
  prometheus::MetricFamily streams = counterFamily(
      "tracecar_h2_streams_total", "HTTP/2 streams opened, by side, counted when the connection closes.");
  prometheus::MetricFamily floods = counterFamily(
      "tracecar_h2_floods_total",
      "HTTP/2 connections closed with GOAWAY ENHANCE_YOUR_CALM, by side and kind of flood.");
  prometheus::MetricFamily too_large = counterFamily(
      "tracecar_h2_header_lists_too_large_total",
      "HTTP/2 header lists over the size limit (answered 431 or reset), by side.");
  prometheus::MetricFamily premature = counterFamily(
      "tracecar_h2_premature_resets_total",
      "HTTP/2 streams the peer reset before their response ended, by side.");
  prometheus::MetricFamily protocol_errors = counterFamily(
      "tracecar_h2_protocol_errors_total", "HTTP/2 connections ended by a protocol error, by side.");
  for (size_t s = 0; s < 2; ++s) {
    const DataPathSnapshot::H2Side& side = snapshot.h2_sides[s];
    const std::string name = s == DataPathSnapshot::kH2Downstream ? "downstream" : "upstream";
    addCounter(streams, {{"side", name}}, side.streams);
    addCounter(too_large, {{"side", name}}, side.headers_too_large);
    addCounter(premature, {{"side", name}}, side.premature_resets);
    addCounter(protocol_errors, {{"side", name}}, side.protocol_errors);
    const std::pair<const char*, uint64_t> kinds[] = {
        {"rapid_reset", side.rapid_reset_floods}, {"continuation", side.continuation_floods},
        {"settings", side.settings_floods},       {"ping", side.ping_floods},
        {"empty_data", side.empty_data_floods}};
    for (const auto& [kind, value] : kinds) addCounter(floods, {{"side", name}, {"kind", kind}}, value);
  }
  prometheus::MetricFamily resets = counterFamily(
      "tracecar_h2_resets_relayed_total", "RST_STREAM relayed from one side to the other.");
  addCounter(resets, {{"direction", "to_upstream"}}, snapshot.h2_resets_to_upstream);
  addCounter(resets, {{"direction", "to_downstream"}}, snapshot.h2_resets_to_downstream);
  prometheus::MetricFamily goaways = counterFamily(
      "tracecar_h2_upstream_goaways_total", "GOAWAY frames received from HTTP/2 upstreams.");
  addCounter(goaways, {}, snapshot.h2_upstream_goaways);
  prometheus::MetricFamily retries = counterFamily(
      "tracecar_h2_refused_stream_retries_total",
      "Requests sent again on another HTTP/2 upstream connection after a refused stream.");
  addCounter(retries, {}, snapshot.h2_refused_retries);
  prometheus::MetricFamily open =
      gaugeFamily("tracecar_h2_upstream_connections_open", "HTTP/2 upstream connections open.",
                  snapshot.h2_upstream_connections_open);
  for (prometheus::MetricFamily* family :
       {&streams, &floods, &too_large, &premature, &protocol_errors, &resets, &goaways, &retries,
        &open}) {
    families.push_back(std::move(*family));
  }
}

// TLS termination and origination (docs/tls.md).
void addTlsFamilies(const DataPathSnapshot& snapshot,
                    std::vector<prometheus::MetricFamily>& families) {
  prometheus::MetricFamily handshakes = counterFamily(
      "tracecar_tls_handshakes_total",
      "TLS handshakes tracecar took part in, by end (inbound: terminated on the inbound "
      "listener, upstream: originated) and result.");
  for (size_t e = 0; e < kTlsEndCount; ++e) {
    const std::string end(tlsEndName(static_cast<TlsEnd>(e)));
    addCounter(handshakes, {{"end", end}, {"result", "ok"}}, snapshot.tls_handshakes[e]);
    addCounter(handshakes, {{"end", end}, {"result", "failed"}},
               snapshot.tls_handshake_failures[e]);
  }
  prometheus::MetricFamily reloads = counterFamily(
      "tracecar_tls_certificate_reloads_total",
      "Certificate, key or CA files loaded again after they changed, by result (failed: the "
      "previous ones stay in use).");
  addCounter(reloads, {{"result", "ok"}}, snapshot.tls_reloads);
  addCounter(reloads, {{"result", "failed"}}, snapshot.tls_reload_failures);
  families.push_back(std::move(handshakes));
  families.push_back(std::move(reloads));
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
  addPoolFamilies(snapshot, families);
  addTransparentFamilies(snapshot, families);
  addH2Families(snapshot, families);
  addTlsFamilies(snapshot, families);
}

std::vector<prometheus::MetricFamily> RunMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> families = metrics_.Collect();
  if (snapshot_) addDataPathFigures(snapshot_(), families);
  return families;
}

}  // namespace tracecar::proxy
