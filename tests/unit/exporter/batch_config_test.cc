#include "exporter/batch_config.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tracecar::exporter {
namespace {

using namespace std::chrono_literals;

using Vars = std::map<std::string, std::string, std::less<>>;

BatchConfig read(Vars vars, std::vector<std::string>& warnings, Vars lower_values = {}) {
  LowerLayer lower;
  lower.value = mapEnvironment(std::move(lower_values));
  lower.name = [](std::string_view variable) { return "file:" + std::string(variable); };
  return BatchConfig::fromEnv(mapEnvironment(std::move(vars)), warnings, lower);
}

TEST(BatchConfig, UsesSpecDefaultsWhenUnset) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({}, warnings);
  EXPECT_EQ(c.schedule_delay, 5000ms);
  EXPECT_EQ(c.export_timeout, 30000ms);
  EXPECT_EQ(c.max_queue_size, 2048u);
  EXPECT_EQ(c.max_export_batch_size, 512u);
  EXPECT_EQ(c.thread_nice, 0);
  EXPECT_TRUE(warnings.empty());
}

TEST(BatchConfig, ReadsAllFour) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_SCHEDULE_DELAY", "250"},
                              {"OTEL_BSP_EXPORT_TIMEOUT", " 1000 "},
                              {"OTEL_BSP_MAX_QUEUE_SIZE", "100"},
                              {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"}},
                             warnings);
  EXPECT_EQ(c.schedule_delay, 250ms);
  EXPECT_EQ(c.export_timeout, 1000ms);
  EXPECT_EQ(c.max_queue_size, 100u);
  EXPECT_EQ(c.max_export_batch_size, 10u);
  EXPECT_TRUE(warnings.empty());
}

TEST(BatchConfig, EmptyValueCountsAsUnset) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_MAX_QUEUE_SIZE", ""}}, warnings);
  EXPECT_EQ(c.max_queue_size, 2048u);
  EXPECT_TRUE(warnings.empty());
}

struct BadValue {
  const char* variable;
  const char* value;
};

class BatchConfigBadValue : public ::testing::TestWithParam<BadValue> {};

TEST_P(BatchConfigBadValue, WarnsNamingVariableAndValueAndKeepsDefault) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{GetParam().variable, GetParam().value}}, warnings);
  const BatchConfig d;
  EXPECT_EQ(c.schedule_delay, d.schedule_delay);
  EXPECT_EQ(c.export_timeout, d.export_timeout);
  EXPECT_EQ(c.max_queue_size, d.max_queue_size);
  EXPECT_EQ(c.max_export_batch_size, d.max_export_batch_size);
  EXPECT_EQ(c.thread_nice, d.thread_nice);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(GetParam().variable), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find(std::string("\"") + GetParam().value + "\""), std::string::npos)
      << warnings[0];
}

INSTANTIATE_TEST_SUITE_P(
    PastLimits, BatchConfigBadValue,
    ::testing::Values(BadValue{"OTEL_BSP_SCHEDULE_DELAY", "-5"},
                      BadValue{"OTEL_BSP_SCHEDULE_DELAY", "5s"},
                      BadValue{"OTEL_BSP_SCHEDULE_DELAY", "2147483648"},
                      BadValue{"OTEL_BSP_EXPORT_TIMEOUT", "-1"},
                      BadValue{"OTEL_BSP_EXPORT_TIMEOUT", "abc"},
                      BadValue{"OTEL_BSP_EXPORT_TIMEOUT", "99999999999999999999999"},
                      BadValue{"OTEL_BSP_MAX_QUEUE_SIZE", "0"},
                      BadValue{"OTEL_BSP_MAX_QUEUE_SIZE", "-1"},
                      BadValue{"OTEL_BSP_MAX_QUEUE_SIZE", "1048577"},
                      BadValue{"OTEL_BSP_MAX_QUEUE_SIZE", "1.5"},
                      BadValue{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"},
                      BadValue{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "+7"},
                      BadValue{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "x"},
                      BadValue{"TRACECAR_EXPORTER_NICE", "20"},
                      BadValue{"TRACECAR_EXPORTER_NICE", "-1"},
                      BadValue{"TRACECAR_EXPORTER_NICE", "low"}),
    [](const ::testing::TestParamInfo<BadValue>& param_info) {
      return std::to_string(param_info.index);
    });

// The common configuration specification: a timeout of 0 means no limit, and a duration may be
// 0 (for the schedule delay: no delay).
TEST(BatchConfig, ZeroTimeoutIsNoLimitAndZeroDelayIsNoDelay) {
  std::vector<std::string> warnings;
  const BatchConfig c =
      read({{"OTEL_BSP_SCHEDULE_DELAY", "0"}, {"OTEL_BSP_EXPORT_TIMEOUT", "0"}}, warnings);
  EXPECT_EQ(c.schedule_delay, 0ms);
  EXPECT_EQ(c.export_timeout, kNoTimeout);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
}

// An invalid variable is treated as not set: the lower layer's value applies, and the warning
// says which value that is.
TEST(BatchConfig, InvalidVariableGivesWayToTheLowerLayer) {
  std::vector<std::string> warnings;
  const BatchConfig c =
      read({{"OTEL_BSP_MAX_QUEUE_SIZE", "abc"}, {"OTEL_BSP_SCHEDULE_DELAY", "2"}}, warnings,
           {{"OTEL_BSP_MAX_QUEUE_SIZE", "8192"}, {"OTEL_BSP_SCHEDULE_DELAY", "7"}});
  EXPECT_EQ(c.max_queue_size, 8192u);
  EXPECT_EQ(c.schedule_delay, 2ms);  // a valid variable still wins
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "OTEL_BSP_MAX_QUEUE_SIZE=\"abc\" is not a whole number in [1, 1048576]; using 8192 "
            "from file:OTEL_BSP_MAX_QUEUE_SIZE");
}

TEST(BatchConfig, InvalidVariableWithoutALowerValueKeepsTheDefaultAndSaysSo) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_MAX_QUEUE_SIZE", "abc"}}, warnings);
  EXPECT_EQ(c.max_queue_size, 2048u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("; using the default 2048"), std::string::npos) << warnings[0];
}

TEST(BatchConfig, LowerLayerValuesApplyUnderUnsetVariables) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_MAX_QUEUE_SIZE", " "}}, warnings,
                             {{"OTEL_BSP_MAX_QUEUE_SIZE", "100"},
                              {"OTEL_BSP_EXPORT_TIMEOUT", "0"},
                              {"TRACECAR_EXPORTER_NICE", "3"}});
  EXPECT_EQ(c.max_queue_size, 100u);
  EXPECT_EQ(c.max_export_batch_size, 100u);  // the default follows the queue down
  EXPECT_EQ(c.export_timeout, kNoTimeout);
  EXPECT_EQ(c.thread_nice, 3);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
}

// The lower layer (tracecar's file) is strict: its batch size past the queue is its caller's
// error to report, not a clamp with a warning.
TEST(BatchConfig, LowerLayerBatchLargerThanTheQueueIsLeftForTheCaller) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_MAX_QUEUE_SIZE", "100"}}, warnings,
                             {{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200"}});
  EXPECT_EQ(c.max_queue_size, 100u);
  EXPECT_EQ(c.max_export_batch_size, 200u);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
}

TEST(BatchConfig, VariableBatchLargerThanALowerQueueNamesTheLowerValue) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"}}, warnings,
                             {{"OTEL_BSP_MAX_QUEUE_SIZE", "100"}});
  EXPECT_EQ(c.max_export_batch_size, 100u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=1000 is larger than "
            "file:OTEL_BSP_MAX_QUEUE_SIZE=100; using 100");
}

TEST(BatchConfig, AcceptsEachLimitExactly) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_SCHEDULE_DELAY", "1"},
                              {"OTEL_BSP_EXPORT_TIMEOUT", "2147483647"},
                              {"OTEL_BSP_MAX_QUEUE_SIZE", "1048576"},
                              {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1"}},
                             warnings);
  EXPECT_EQ(c.schedule_delay, 1ms);
  EXPECT_EQ(c.export_timeout, 2147483647ms);
  EXPECT_EQ(c.max_queue_size, 1048576u);
  EXPECT_EQ(c.max_export_batch_size, 1u);
  EXPECT_TRUE(warnings.empty());
}

TEST(BatchConfig, ReadsTheExportThreadsNiceIncrementAtEachEndOfItsRange) {
  for (const int nice : {0, 1, 19}) {
    std::vector<std::string> warnings;
    const BatchConfig c = read({{"TRACECAR_EXPORTER_NICE", std::to_string(nice)}}, warnings);
    EXPECT_EQ(c.thread_nice, nice);
    EXPECT_TRUE(warnings.empty());
  }
}

TEST(BatchConfig, BatchEqualToQueueIsKept) {
  std::vector<std::string> warnings;
  const BatchConfig c = read(
      {{"OTEL_BSP_MAX_QUEUE_SIZE", "64"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"}}, warnings);
  EXPECT_EQ(c.max_export_batch_size, 64u);
  EXPECT_TRUE(warnings.empty());
}

TEST(BatchConfig, BatchLargerThanQueueIsClampedWithWarning) {
  std::vector<std::string> warnings;
  const BatchConfig c = read(
      {{"OTEL_BSP_MAX_QUEUE_SIZE", "64"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "65"}}, warnings);
  EXPECT_EQ(c.max_export_batch_size, 64u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), std::string::npos);
  // A queue nobody set is named as the default.
  warnings.clear();
  EXPECT_EQ(read({{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"}}, warnings).max_export_batch_size,
            2048u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4096 is larger than the default "
            "OTEL_BSP_MAX_QUEUE_SIZE 2048; using 2048");
}

TEST(BatchConfig, DefaultBatchIsClampedToSmallQueueWithoutAWarning) {
  std::vector<std::string> warnings;
  const BatchConfig c = read({{"OTEL_BSP_MAX_QUEUE_SIZE", "100"}}, warnings);
  EXPECT_EQ(c.max_export_batch_size, 100u);
  EXPECT_TRUE(warnings.empty()) << warnings.front();  // nobody set the batch size
}

}  // namespace
}  // namespace tracecar::exporter
