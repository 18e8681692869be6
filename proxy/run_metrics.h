#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <vector>

#include "proxy/data_path_counters.h"
#include "proxy/metrics.h"

namespace tracecar::proxy {

// /metrics of a running proxy: ProxyMetrics' families, with what only the data path sees added
// from its counters at scrape time: downstream connections (open and total) of the inbound and
// outbound listeners, the rejections answered before any StreamObserver existed (see
// repliedBeforeObservers; the observers count every other rejection, so none is counted twice),
// and the transparent mode's families: connections by sniffed protocol, opaque tunnels and their
// bytes, refused connections.
class RunMetrics final : public prometheus::Collectable {
 public:
  // Both must outlive this object; snapshot is called from the scraping thread.
  RunMetrics(const ProxyMetrics& metrics, std::function<DataPathSnapshot()> snapshot)
      : metrics_(metrics), snapshot_(std::move(snapshot)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ProxyMetrics& metrics_;
  std::function<DataPathSnapshot()> snapshot_;
};

// Adds the data path's figures to families made by ProxyMetrics::Collect (exposed for tests).
void addDataPathFigures(const DataPathSnapshot& snapshot,
                        std::vector<prometheus::MetricFamily>& families);

}  // namespace tracecar::proxy
