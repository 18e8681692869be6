// OtlpHttpExporter over TLS against the fake collector: server verification (CA, host name)
// and client certificates, with the PKI of tests/support/make_certs.sh.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "exporter/otlp_http_exporter.h"
#include "integration/support/exporter_fixture.h"

namespace tracecar::exporter {
namespace {

class OtlpHttpsExporterTest : public OtlpHttpExporterTest {
 protected:
  void SetUp() override {
    OtlpHttpExporterTest::SetUp();
    ASSERT_TRUE(TestCerts::get().ok()) << "make_certs.sh failed";
  }
  static std::string pki(std::string_view name) { return TestCerts::get().pki(name); }
  static FakeCollector::Tls serverTls(std::string_view cert = "server") {
    return {pki(std::string(cert) + ".pem"), pki(std::string(cert) + ".key"), ""};
  }
};

TEST_F(OtlpHttpsExporterTest, ExportsOverTlsWithTheConfiguredCa) {
  FakeCollector collector(R"([{"status": 200}])", serverTls());
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector, "https", "localhost");
  config.certificate = pki("ca.pem");
  makeExporter(config);

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 2});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].header("host"), "localhost:" + std::to_string(collector.port()));
  EXPECT_EQ(requests[0].body, protobufOf(batch_));
  EXPECT_EQ(requests[1].connection, requests[0].connection);
}

TEST_F(OtlpHttpsExporterTest, RefusesAServerSignedByAnotherCa) {
  FakeCollector collector(R"([{"status": 200}])", serverTls());
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector, "https", "localhost");
  config.certificate = pki("other-ca.pem");
  config.timeout = 1500ms;  // room for at least one handshake however slow the machine
  makeExporter(config);

  EXPECT_EQ(exportBatch().status, Status::kRetryExhausted);
  EXPECT_EQ(collector.requests().size(), 0u);
  EXPECT_GE(counters_.requestCount(Result::kRetryableFailure), 1u);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
  EXPECT_TRUE(logs_.has("error", {"TLS"})) << logs_.all();
}

TEST_F(OtlpHttpsExporterTest, RefusesACertificateForAnotherHost) {
  FakeCollector collector(R"([{"status": 200}])", serverTls("wronghost"));
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector, "https", "localhost");
  config.certificate = pki("ca.pem");
  config.timeout = 500ms;
  makeExporter(config);

  EXPECT_EQ(exportBatch().status, Status::kRetryExhausted);
  EXPECT_EQ(collector.requests().size(), 0u);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
  EXPECT_TRUE(logs_.has("error", {"TLS"})) << logs_.all();
}

TEST_F(OtlpHttpsExporterTest, PresentsTheClientCertificateForMutualTls) {
  FakeCollector::Tls tls = serverTls();
  tls.client_ca = pki("ca.pem");
  FakeCollector collector(R"([{"status": 200}])", tls);
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector, "https", "localhost");
  config.certificate = pki("ca.pem");
  config.client_certificate = pki("client.pem");
  config.client_key = pki("client.key");
  makeExporter(config);

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  expectRequests({.success = 1});
  EXPECT_EQ(collector.requests().size(), 1u);
}

TEST_F(OtlpHttpsExporterTest, IsRefusedWithoutAClientCertificate) {
  FakeCollector::Tls tls = serverTls();
  tls.client_ca = pki("ca.pem");
  FakeCollector collector(R"([{"status": 200}])", tls);
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector, "https", "localhost");
  config.certificate = pki("ca.pem");
  config.timeout = 500ms;
  makeExporter(config);

  EXPECT_EQ(exportBatch().status, Status::kRetryExhausted);
  EXPECT_EQ(collector.requests().size(), 0u);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
  EXPECT_GE(counters_.requestCount(Result::kRetryableFailure) +
                counters_.requestCount(Result::kTimeout),
            1u);
}

TEST_F(OtlpHttpsExporterTest, CreateNamesAMissingCaFile) {
  OtlpConfig config;
  config.endpoint = {"https", "localhost", 4318, "/v1/traces"};
  config.certificate = "/nonexistent/tracecar-ca.pem";
  auto created = OtlpHttpExporter::create(&loop_, config, testing::testResource(),
                                          tracecarScope("0.1.0"), counters_);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.status().message().find("/nonexistent/tracecar-ca.pem"), std::string::npos)
      << created.status();
}

}  // namespace
}  // namespace tracecar::exporter
