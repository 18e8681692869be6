// The files a configuration names, read as `tracecar validate` and `run` read them
// (loadDataPathTls, checkExporterFiles): every file that cannot be used is an error of its own,
// naming the file's key and line, the flag or the variable that gave it, with a plain reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "proxy/config.h"
#include "proxy/run_settings.h"
#include "support/scratch_dir.h"

namespace tracecar::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Env = std::map<std::string, std::string, std::less<>>;

class ConfigFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.empty());
    const std::string script = std::string(TRACECAR_SOURCE_DIR) + "/tests/support/make_certs.sh";
    ASSERT_EQ(std::system(("bash " + script + " " + dir_ + "/pki >/dev/null 2>&1").c_str()), 0);
  }

  std::string pki(const std::string& name) const { return dir_ + "/pki/" + name; }

  // A copy of a key of the test PKI, encrypted with a passphrase.
  std::string encryptedKey(const std::string& name) const {
    const std::string out = dir_ + "/encrypted-" + name;
    const std::string command = "openssl pkey -in " + pki(name) +
                                " -aes256 -passout pass:secret -out " + out + " 2>/dev/null";
    return std::system(command.c_str()) == 0 ? out : std::string();
  }

  // The configuration's file errors, as validate lists them after loading.
  std::vector<std::string> fileErrors(const std::string& yaml, Env env = {},
                                      ConfigFlags flags = {}) const {
    ConfigInputs inputs;
    inputs.env = exporter::mapEnvironment(std::move(env));
    inputs.cpu.cgroup_root = "/nonexistent/cgroup";
    inputs.cpu.proc_self_cgroup = "/nonexistent/proc/self/cgroup";
    inputs.cpu.available_cpus = 1;
    inputs.file_text = yaml;
    flags.config_file = "test.yaml";
    LoadedConfig loaded = loadConfig(flags, inputs);
    if (!loaded.ok()) return {"not loaded: " + loaded.errors.front()};
    std::vector<std::string> errors;
    loadDataPathTls(loaded.config, loaded.origins, errors);
    checkExporterFiles(loaded.config, loaded.origins, errors);
    return errors;
  }

  const test_support::ScratchDir scratch_{"tracecar-config-files"};
  const std::string& dir_ = scratch_.path();
};

// Not only the first of a group: the inbound listener's two files, a destination's CA, and the
// exporter's three.
TEST_F(ConfigFilesTest, EveryUnreadableFileIsAnErrorAtItsKeyAndLine) {
  const std::string yaml =
      "tls:\n"
      "  inbound:\n"
      "    cert_file: /nonexistent/c.pem\n"
      "    key_file: /nonexistent/k.pem\n"
      "upstreams:\n"
      "  destinations:\n"
      "    - match: api.example.com\n"
      "      tls: {ca_file: /nonexistent/api-ca.pem}\n"
      "exporter:\n"
      "  endpoint: https://127.0.0.1:4318\n"
      "  certificate: /nonexistent/ca.pem\n"
      "  client_key: /nonexistent/ck.pem\n"
      "  client_certificate: /nonexistent/cc.pem\n";
  EXPECT_THAT(
      fileErrors(yaml),
      ElementsAre("test.yaml:3:16: tls.inbound.cert_file: cannot read /nonexistent/c.pem: No "
                  "such file or directory",
                  "test.yaml:4:15: tls.inbound.key_file: cannot read /nonexistent/k.pem: No such "
                  "file or directory",
                  "test.yaml:8:22: upstreams.destinations[0].tls.ca_file: cannot read "
                  "/nonexistent/api-ca.pem: No such file or directory",
                  "test.yaml:11:16: exporter.certificate: cannot read /nonexistent/ca.pem: No "
                  "such file or directory",
                  "test.yaml:13:23: exporter.client_certificate: cannot read /nonexistent/cc.pem: "
                  "No such file or directory",
                  "test.yaml:12:15: exporter.client_key: cannot read /nonexistent/ck.pem: No "
                  "such file or directory"));
}

TEST_F(ConfigFilesTest, VariablesAndFlagsNameTheirFiles) {
  ConfigFlags flags;
  flags.tls_cert = "/nonexistent/c.pem";
  flags.tls_key = pki("server.key");
  EXPECT_THAT(fileErrors("",
                         {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4318"},
                          {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/ca.pem"},
                          {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/nonexistent/ck.pem"},
                          {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki("client.pem")}},
                         flags),
              ElementsAre("--tls-cert: cannot read /nonexistent/c.pem: No such file or directory",
                          "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: cannot read /nonexistent/ca.pem: "
                          "No such file or directory",
                          "OTEL_EXPORTER_OTLP_CLIENT_KEY: cannot read /nonexistent/ck.pem: No "
                          "such file or directory"));
  // A directory opens, but is no file.
  EXPECT_THAT(fileErrors("tls:\n  inbound: {cert_file: " + dir_ + ", key_file: " +
                         pki("server.key") + "}\n"),
              ElementsAre("test.yaml:2:24: tls.inbound.cert_file: cannot read " + dir_ +
                          ": it is a directory"));
}

TEST_F(ConfigFilesTest, TheConsoleExportersFileIsNamedByItsSetting) {
  EXPECT_THAT(fileErrors("", {{"TRACECAR_CONSOLE_EXPORT_PATH", "/nonexistent/dir/x.json"}}),
              ElementsAre("TRACECAR_CONSOLE_EXPORT_PATH: cannot open /nonexistent/dir/x.json for "
                          "appending: No such file or directory"));
  EXPECT_THAT(fileErrors("exporter:\n  console_path: /nonexistent/dir/x.json\n"),
              ElementsAre("test.yaml:2:17: exporter.console_path: cannot open "
                          "/nonexistent/dir/x.json for appending: No such file or directory"));
  // A new file in a directory that takes it: `run` creates it.
  EXPECT_THAT(fileErrors("exporter:\n  console_path: " + dir_ + "/spans.jsonl\n"), IsEmpty());
}

// OpenSSL would ask for a passphrase on the terminal, and wait: tracecar has none to give.
TEST_F(ConfigFilesTest, EncryptedKeysAreRefusedAtTheirKey) {
  const std::string server_key = encryptedKey("server.key");
  const std::string client_key = encryptedKey("client.key");
  ASSERT_FALSE(server_key.empty() || client_key.empty()) << "openssl pkey failed";
  EXPECT_THAT(
      fileErrors("tls:\n  inbound:\n    cert_file: " + pki("server.pem") +
                     "\n    key_file: " + server_key + "\n",
                 {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4318"},
                  {"OTEL_EXPORTER_OTLP_CLIENT_KEY", client_key},
                  {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki("client.pem")}}),
      ElementsAre("test.yaml:4:15: tls.inbound.key_file: TLS: the private key " + server_key +
                      " is encrypted; encrypted private keys are not supported (decrypt it: "
                      "openssl pkey -in KEY -out PLAIN_KEY)",
                  "OTEL_EXPORTER_OTLP_CLIENT_KEY: TLS: the private key " + client_key +
                      " is encrypted; encrypted private keys are not supported (decrypt it: "
                      "openssl pkey -in KEY -out PLAIN_KEY)"));
}

TEST_F(ConfigFilesTest, ContentErrorsAreTheirFilesKeys) {
  // Not PEM: the certificate's key; another certificate's key: the key's.
  const std::vector<std::string> errors =
      fileErrors("tls:\n  inbound:\n    cert_file: " + pki("server.pem") + "\n    key_file: " +
                 pki("client.key") + "\nupstreams:\n  destinations:\n    - match: a.example\n"
                 "      tls: {ca_file: " + std::string(TRACECAR_SOURCE_DIR) + "/README.md}\n");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("test.yaml:4:15: tls.inbound.key_file: TLS: "
                                               "private key " + pki("client.key") +
                                               " does not match certificate"));
  EXPECT_EQ(errors[1], "test.yaml:8:22: upstreams.destinations[0].tls.ca_file: TLS: cannot load "
                       "CA certificates from " + std::string(TRACECAR_SOURCE_DIR) +
                       "/README.md: no certificate in it (want PEM \"-----BEGIN "
                       "CERTIFICATE-----\" blocks)");
  EXPECT_THAT(fileErrors("tls:\n  inbound:\n    cert_file: " + pki("server.pem") +
                         "\n    key_file: " + pki("server.key") + "\n"),
              IsEmpty());
}

}  // namespace
}  // namespace tracecar::proxy
