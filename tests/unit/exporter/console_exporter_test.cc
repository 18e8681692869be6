#include "exporter/console_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <string>

#include "support/scratch_dir.h"

namespace tracecar::exporter {
namespace {

// A trivial encoding: the span names, comma-separated.
void names(std::span<const SpanRecord* const> batch, std::string& out) {
  for (const SpanRecord* s : batch) out += s->name + ",";
}


std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ConsoleExporter, WritesEachBatchAsOneLine) {
  const test_support::ScratchDir dir("tracecar-console-exporter-test");
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.file("spans.jsonl");
  std::string error;
  auto exporter = ConsoleExporter::toFile(path, names, error);
  ASSERT_NE(exporter, nullptr) << error;
  SpanRecord a;
  a.name = "a";
  SpanRecord b;
  b.name = "b";
  const SpanRecord* first[] = {&a, &b};
  const SpanRecord* second[] = {&b};
  int answers = 0;
  exporter->exportBatch(first, 0, [&](ExportOutcome o) {
    EXPECT_EQ(o.status, ExportOutcome::Status::kSuccess);
    ++answers;
  });
  exporter->exportBatch(second, 0, [&](ExportOutcome o) {
    EXPECT_EQ(o.status, ExportOutcome::Status::kSuccess);
    ++answers;
  });
  bool shut = false;
  exporter->shutdown([&] { shut = true; });
  EXPECT_EQ(answers, 2);
  EXPECT_TRUE(shut);
  EXPECT_EQ(slurp(path), "a,b,\nb,\n");
}

TEST(ConsoleExporter, WriteErrorIsNonRetryableWithErrnoMessage) {
  std::string error;
  auto exporter = ConsoleExporter::toFile("/dev/full", names, error);
  ASSERT_NE(exporter, nullptr) << error;
  SpanRecord a;
  a.name = "a";
  const SpanRecord* batch[] = {&a};
  ExportOutcome outcome;
  exporter->exportBatch(batch, 0, [&](ExportOutcome o) { outcome = std::move(o); });
  EXPECT_EQ(outcome.status, ExportOutcome::Status::kNonRetryable);
  EXPECT_NE(outcome.message.find("No space left on device"), std::string::npos)
      << outcome.message;
}

TEST(ConsoleExporter, UnopenablePathIsReported) {
  std::string error;
  EXPECT_EQ(ConsoleExporter::toFile("/nonexistent/dir/spans", names, error), nullptr);
  EXPECT_NE(error.find("/nonexistent/dir/spans"), std::string::npos);
}

// A FIFO whose reader (a log shipper) starts after the sidecar: opening it must not block,
// as a blocking open() of a FIFO's write end would until a reader came.
TEST(ConsoleExporter, AFifoWithoutAReaderIsWaitedForWithoutBlocking) {
  const test_support::ScratchDir dir("tracecar-console-exporter-test");
  ASSERT_FALSE(dir.path().empty());
  const std::string fifo = dir.file("spans.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string error;
  auto exporter = ConsoleExporter::toFile(fifo, names, error);
  ASSERT_NE(exporter, nullptr) << error;
  EXPECT_TRUE(exporter->waitingForReader());
  SpanRecord a;
  a.name = "a";
  const SpanRecord* batch[] = {&a};
  // No reader yet: the batch is dropped, and says why.
  ExportOutcome outcome;
  exporter->exportBatch(batch, 0, [&](ExportOutcome o) { outcome = std::move(o); });
  EXPECT_EQ(outcome.status, ExportOutcome::Status::kNonRetryable);
  EXPECT_NE(outcome.message.find("no reader has opened the FIFO " + fifo), std::string::npos)
      << outcome.message;

  // A reader comes: the next batch reaches it.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  exporter->exportBatch(batch, 0, [&](ExportOutcome o) { outcome = std::move(o); });
  EXPECT_EQ(outcome.status, ExportOutcome::Status::kSuccess) << outcome.message;
  EXPECT_FALSE(exporter->waitingForReader());
  char buffer[16] = {};
  EXPECT_EQ(::read(reader, buffer, sizeof buffer), 3);
  EXPECT_EQ(std::string(buffer, 3), "a,\n");

  // The reader goes away: that batch fails (EPIPE, SIGPIPE being ignored as main() does), and the
  // exporter waits for the next reader.
  ::close(reader);
  const auto previous = ::signal(SIGPIPE, SIG_IGN);
  exporter->exportBatch(batch, 0, [&](ExportOutcome o) { outcome = std::move(o); });
  ::signal(SIGPIPE, previous);
  EXPECT_EQ(outcome.status, ExportOutcome::Status::kNonRetryable);
  EXPECT_TRUE(exporter->waitingForReader());
  const int next = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(next, 0);
  exporter->exportBatch(batch, 0, [&](ExportOutcome o) { outcome = std::move(o); });
  EXPECT_EQ(outcome.status, ExportOutcome::Status::kSuccess) << outcome.message;
  ::close(next);
  exporter->shutdown(nullptr);
}

TEST(ConsoleExporter, EncoderExceptionIsNonRetryable) {
  std::string error;
  auto exporter = ConsoleExporter::toFile(
      "/dev/null", [](auto, std::string&) { throw std::runtime_error("boom"); }, error);
  ASSERT_NE(exporter, nullptr);
  ExportOutcome outcome;
  exporter->exportBatch({}, 0, [&](ExportOutcome o) { outcome = std::move(o); });
  EXPECT_EQ(outcome.status, ExportOutcome::Status::kNonRetryable);
  EXPECT_NE(outcome.message.find("boom"), std::string::npos);
}

TEST(ConsoleExporter, OtlpJsonLineHasNoInnerNewline) {
  const test_support::ScratchDir dir("tracecar-console-exporter-test");
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.file("spans.jsonl");
  std::string error;
  std::vector<std::string> warnings;
  auto exporter = ConsoleExporter::toFile(
      path,
      ConsoleExporter::otlpJson(
          Resource::fromEnvironment(mapEnvironment({}), "0.1.0", warnings), {"tracecar", "0.1.0"}),
      error);
  ASSERT_NE(exporter, nullptr) << error;
  SpanRecord a;
  a.name = "line\nbreak";
  a.trace_id.bytes[15] = 1;
  a.span_id.bytes[7] = 2;
  const SpanRecord* batch[] = {&a};
  ExportOutcome outcome;
  exporter->exportBatch(batch, 0, [&](ExportOutcome o) { outcome = std::move(o); });
  EXPECT_EQ(outcome.status, ExportOutcome::Status::kSuccess) << outcome.message;
  const std::string text = slurp(path);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_EQ(text.front(), '{');
  EXPECT_NE(text.find("resourceSpans"), std::string::npos);
}

}  // namespace
}  // namespace tracecar::exporter
