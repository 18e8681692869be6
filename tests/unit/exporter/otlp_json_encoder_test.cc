#include "exporter/otlp_json_encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "support/otlp_test_support.h"

#include "support/counting_allocator.h"
#include "support/scratch_dir.h"

namespace tracecar::exporter {
namespace {

using ::testing::Contains;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using namespace ::tracecar::exporter::testing;

std::string encodeJson(const std::vector<SpanRecord>& spans) {
  std::vector<const SpanRecord*> batch;
  for (const SpanRecord& s : spans) batch.push_back(&s);
  std::string out;
  OtlpJsonEncoder().encode(testResource(), tracecarScope("0.1.0"), batch, out);
  return out;
}

// Python's strict json module parses the text (no NaN literals, no raw control characters,
// UTF-8 only) and prints one "path=json-leaf" line per value; an empty list means it failed.
std::vector<std::string> pythonFields(const std::string& json) {
  const test_support::ScratchDir scratch("tracecar-json");
  if (scratch.path().empty()) return {};
  const std::string path = scratch.file("otlp.json");
  {
    std::ofstream f(path, std::ios::binary);
    f << json;
  }
  const std::string script =
      "import json,sys\n"
      "def bad(c): raise ValueError('non-standard constant '+c)\n"
      "d=json.loads(open(sys.argv[1],'rb').read().decode('utf-8'),parse_constant=bad)\n"
      "def walk(p,v):\n"
      "  if isinstance(v,dict):\n"
      "    for k,x in v.items(): walk(p+'.'+k if p else k,x)\n"
      "  elif isinstance(v,list):\n"
      "    for i,x in enumerate(v): walk('%s[%d]'%(p,i),x)\n"
      "  else: print(p+'='+json.dumps(v))\n"
      "walk('',d)\n";
  const std::string command = "python3 -c \"$TRACECAR_PY\" '" + path + "' > '" + path + ".out'";
  setenv("TRACECAR_PY", script.c_str(), 1);
  const int rc = std::system(command.c_str());
  const std::string out = readFile(path + ".out");
  if (rc != 0) return {};
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(out.substr(start, nl - start));
  }
  return lines;
}

TEST(OtlpJsonEncoder, ServerAndRootSpansFollowTheOtlpJsonMapping) {
  const std::string rs = "resourceSpans[0].";
  const std::string res = rs + "resource.attributes";
  const std::string ss = rs + "scopeSpans[0].";
  const std::string sp = ss + "spans[0].";
  const std::string kv = sp + "attributes";
  const std::string root = ss + "spans[1].";
  const std::vector<std::string> expected = {
      res + "[0].key=\"service.name\"",
      res + "[0].value.stringValue=\"checkout\"",
      res + "[1].key=\"telemetry.sdk.name\"",
      res + "[1].value.stringValue=\"tracecar\"",
      res + "[2].key=\"telemetry.sdk.language\"",
      res + "[2].value.stringValue=\"cpp\"",
      res + "[3].key=\"telemetry.sdk.version\"",
      res + "[3].value.stringValue=\"0.1.0\"",
      res + "[4].key=\"k8s.pod.name\"",
      res + "[4].value.stringValue=\"checkout-7d9f\"",
      ss + "scope.name=\"tracecar\"",
      ss + "scope.version=\"0.1.0\"",
      sp + "traceId=\"4bf92f3577b34da6a3ce929d0e0e4736\"",
      sp + "spanId=\"00f067aa0ba902b7\"",
      sp + "traceState=\"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\"",
      sp + "parentSpanId=\"53995c3f42cd8ad8\"",
      sp + "flags=769",
      sp + "name=\"GET /api/v1/users/{id}\"",
      sp + "kind=2",
      sp + "startTimeUnixNano=\"1700000000123456789\"",
      sp + "endTimeUnixNano=\"1700000000173456789\"",
      kv + "[0].key=\"http.request.method\"",
      kv + "[0].value.stringValue=\"GET\"",
      kv + "[1].key=\"url.path\"",
      kv + "[1].value.stringValue=\"/api/v1/users/42\"",
      kv + "[2].key=\"url.scheme\"",
      kv + "[2].value.stringValue=\"https\"",
      kv + "[3].key=\"http.route\"",
      kv + "[3].value.stringValue=\"/api/v1/users/{id}\"",
      kv + "[4].key=\"http.response.status_code\"",
      kv + "[4].value.intValue=\"503\"",
      kv + "[5].key=\"server.address\"",
      kv + "[5].value.stringValue=\"users.default.svc.cluster.local\"",
      kv + "[6].key=\"server.port\"",
      kv + "[6].value.intValue=\"8080\"",
      kv + "[7].key=\"client.address\"",
      kv + "[7].value.stringValue=\"10.1.2.3\"",
      kv + "[8].key=\"user_agent.original\"",
      kv + "[8].value.stringValue=\"curl/8.4.0\"",
      kv + "[9].key=\"http.request.header.accept\"",
      kv + "[9].value.arrayValue.values[0].stringValue=\"application/json\"",
      kv + "[9].value.arrayValue.values[1].stringValue=\"text/*\"",
      kv + "[10].key=\"tracecar.upstream.retried\"",
      kv + "[10].value.boolValue=false",
      kv + "[11].key=\"tracecar.sample_ratio\"",
      kv + "[11].value.doubleValue=0.25",
      sp + "events[0].timeUnixNano=\"1700000000170000000\"",
      sp + "events[0].name=\"upstream reset\"",
      sp + "events[0].attributes[0].key=\"tracecar.attempt\"",
      sp + "events[0].attributes[0].value.intValue=\"-1\"",
      sp + "links[0].traceId=\"0af7651916cd43dd8448eb211c80319c\"",
      sp + "links[0].spanId=\"b7ad6b7169203331\"",
      sp + "links[0].traceState=\"rojo=1\"",
      sp + "links[0].attributes[0].key=\"link.reason\"",
      sp + "links[0].attributes[0].value.stringValue=\"retry\"",
      sp + "links[0].flags=257",
      sp + "status.message=\"upstream \\\"users\\\" answered 503\"",
      sp + "status.code=2",
      root + "traceId=\"5b8efff798038103d269b633813fc60c\"",
      root + "spanId=\"eee19b7ec3c1b174\"",
      root + "name=\"health\"",
      root + "kind=1",
      root + "startTimeUnixNano=\"1\"",
      root + "endTimeUnixNano=\"2\"",
      root + "attributes[0].key=\"a\"",
      root + "attributes[0].value.stringValue=\"\\u00e9 and more than \"",
      root + "droppedAttributesCount=2",
      root + "droppedEventsCount=1",
      root + "droppedLinksCount=3",
  };
  EXPECT_THAT(pythonFields(encodeJson({realisticServerSpan(), rootSpan()})),
              ElementsAreArray(expected));
}

TEST(OtlpJsonEncoder, EmptyBatchHasAnEmptySpanList) {
  EXPECT_THAT(encodeJson({}), HasSubstr("\"spans\":[]"));
  EXPECT_THAT(pythonFields(encodeJson({})), Contains("resourceSpans[0].scopeSpans[0].scope.name=\"tracecar\""));
}

TEST(OtlpJsonEncoder, NonFiniteDoublesAreStringsAndOthersNumbers) {
  SpanRecord s = rootSpan();
  s.attributes.clear();
  s.attributes.set("nan", std::numeric_limits<double>::quiet_NaN());
  s.attributes.set("inf", std::numeric_limits<double>::infinity());
  s.attributes.set("ninf", -std::numeric_limits<double>::infinity());
  s.attributes.set("big", 1e300);
  s.attributes.set("neg", -0.5);
  s.attributes.set("whole", 3.0);
  const std::string kv = "resourceSpans[0].scopeSpans[0].spans[0].attributes";
  EXPECT_THAT(pythonFields(encodeJson({s})),
              ::testing::IsSupersetOf({kv + "[0].value.doubleValue=\"NaN\"",
                                       kv + "[1].value.doubleValue=\"Infinity\"",
                                       kv + "[2].value.doubleValue=\"-Infinity\"",
                                       kv + "[3].value.doubleValue=1e+300",
                                       kv + "[4].value.doubleValue=-0.5",
                                       kv + "[5].value.doubleValue=3"}));
}

TEST(OtlpJsonEncoder, Int64ExtremesAreDecimalStrings) {
  SpanRecord s = rootSpan();
  s.attributes.clear();
  s.attributes.set("min", std::numeric_limits<int64_t>::min());
  s.attributes.set("max", std::numeric_limits<int64_t>::max());
  s.end_unix_nano = std::numeric_limits<uint64_t>::max();
  const std::string json = encodeJson({s});
  EXPECT_THAT(json, HasSubstr("{\"intValue\":\"-9223372036854775808\"}"));
  EXPECT_THAT(json, HasSubstr("{\"intValue\":\"9223372036854775807\"}"));
  EXPECT_THAT(json, HasSubstr("\"endTimeUnixNano\":\"18446744073709551615\""));
}

TEST(OtlpJsonEncoder, EscapesQuotesBackslashesAndControlCharacters) {
  SpanRecord s = rootSpan();
  s.name = "a\"b\\c/\n\t\x01\x1f\x7f";
  const std::string json = encodeJson({s});
  EXPECT_THAT(json, HasSubstr("\"name\":\"a\\\"b\\\\c/\\u000a\\u0009\\u0001\\u001f\x7f\""));
  EXPECT_THAT(pythonFields(json),
              Contains("resourceSpans[0].scopeSpans[0].spans[0].name="
                       "\"a\\\"b\\\\c/\\n\\t\\u0001\\u001f\\u007f\""));
}

TEST(OtlpJsonEncoder, EscapesSpecialBytesAtEveryPositionOfLongStrings) {
  std::vector<SpanRecord> spans;
  std::vector<std::string> expected;
  const std::pair<char, std::string_view> specials[] = {
      {'"', "\\\""}, {'\\', "\\\\"}, {'\x01', "\\u0001"}, {'\x1f', "\\u001f"}};
  for (size_t pos = 0; pos < 20; ++pos) {
    for (const auto& [special, escaped] : specials) {
      SpanRecord s = rootSpan();
      s.name = std::string(20, 'x');
      s.name[pos] = special;
      expected.push_back("resourceSpans[0].scopeSpans[0].spans[" + std::to_string(spans.size()) +
                         "].name=\"" + std::string(pos, 'x') + std::string(escaped) +
                         std::string(19 - pos, 'x') + "\"");
      spans.push_back(std::move(s));
    }
  }
  const std::vector<std::string> fields = pythonFields(encodeJson(spans));
  for (const std::string& e : expected) EXPECT_THAT(fields, Contains(e));
}

TEST(OtlpJsonEncoder, InvalidUtf8BecomesReplacementCharacter) {
  SpanRecord s = rootSpan();
  s.name = "bad\xff\xc3 \xe2\x82\xac";
  EXPECT_THAT(pythonFields(encodeJson({s})),
              Contains("resourceSpans[0].scopeSpans[0].spans[0].name="
                       "\"bad\\ufffd\\ufffd \\u20ac\""));
}

TEST(OtlpJsonEncoder, ReencodingIntoTheSameBufferAllocatesNothing) {
  std::vector<SpanRecord> spans(512, realisticServerSpan());
  std::vector<const SpanRecord*> batch;
  for (const SpanRecord& s : spans) batch.push_back(&s);
  const Resource resource = testResource();
  const InstrumentationScope scope = tracecarScope("0.1.0");
  OtlpJsonEncoder encoder;
  std::string out;
  encoder.encode(resource, scope, batch, out);
  const std::string first = out;
  const size_t before = g_allocations.load();
  encoder.encode(resource, scope, batch, out);
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(out, first);
}

// --- parseJsonPartialSuccess --------------------------------------------------------------

struct Parsed {
  bool ok = false;
  uint64_t rejected = 0;
  std::string message;
};

Parsed parse(std::string_view body) {
  Parsed p;
  p.rejected = 99;
  p.message = "stale";
  p.ok = parseJsonPartialSuccess(body, p.rejected, p.message);
  return p;
}

TEST(ParseJsonPartialSuccess, ReadsRejectedSpansAsStringOrNumber) {
  const Parsed s = parse(R"({"partialSuccess":{"rejectedSpans":"3","errorMessage":"too big"}})");
  EXPECT_TRUE(s.ok);
  EXPECT_EQ(s.rejected, 3u);
  EXPECT_EQ(s.message, "too big");
  const Parsed n = parse(" {\n \"partialSuccess\" : { \"rejectedSpans\" : 12 } } \n");
  EXPECT_TRUE(n.ok);
  EXPECT_EQ(n.rejected, 12u);
  EXPECT_EQ(n.message, "");
}

TEST(ParseJsonPartialSuccess, EmptyBodiesAndObjectsAreFullSuccess) {
  for (std::string_view body : {"", "  ", "{}", R"({"partialSuccess":{}})",
                                R"({"partialSuccess":null})"}) {
    const Parsed p = parse(body);
    EXPECT_TRUE(p.ok) << body;
    EXPECT_EQ(p.rejected, 0u) << body;
    EXPECT_EQ(p.message, "") << body;
  }
}

TEST(ParseJsonPartialSuccess, AcceptsProtoFieldNames) {
  const Parsed p = parse(R"({"partial_success":{"rejected_spans":"4","error_message":"x"}})");
  EXPECT_TRUE(p.ok);
  EXPECT_EQ(p.rejected, 4u);
  EXPECT_EQ(p.message, "x");
}

TEST(ParseJsonPartialSuccess, SkipsUnknownMembersOfEveryKind) {
  const Parsed p = parse(
      R"({"a":[1,-2.5e3,true,false,null,{"b":["c"]}],"partialSuccess":)"
      R"({"x":{"y":[]},"errorMessage":"m","rejectedSpans":"5","z":"\"}"},"w":"v"})");
  EXPECT_TRUE(p.ok);
  EXPECT_EQ(p.rejected, 5u);
  EXPECT_EQ(p.message, "m");
}

TEST(ParseJsonPartialSuccess, DecodesEscapesInTheMessage) {
  const Parsed p = parse(
      R"({"partialSuccess":{"errorMessage":"q\" b\\ s\/ \n\t \u00e9 \ud83d\ude00 \ud800x"}})");
  EXPECT_TRUE(p.ok);
  EXPECT_EQ(p.message, "q\" b\\ s/ \n\t \xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbdx");
}

TEST(ParseJsonPartialSuccess, NegativeRejectedCountReadsAsZero) {
  EXPECT_EQ(parse(R"({"partialSuccess":{"rejectedSpans":"-3"}})").rejected, 0u);
}

TEST(ParseJsonPartialSuccess, RejectsMalformedBodies) {
  for (std::string_view body :
       {"{", "[]", "null", "<html>", R"({"partialSuccess":{"rejectedSpans":"3x"}})",
        R"({"partialSuccess":{"rejectedSpans":"three"}})",
        R"({"partialSuccess":{"errorMessage":7}})", R"({"a":1}{)", R"({"a":1,})",
        R"({"a":"\q"})", "{\"a\":\"raw\ncontrol\"}", R"({"a":tru})"}) {
    EXPECT_FALSE(parse(body).ok) << body;
  }
}

TEST(ParseJsonPartialSuccess, DeepNestingFailsWithoutExhaustingTheStack) {
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(parse(deep).ok);
}

TEST(ParseJsonPartialSuccess, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(11);
  static constexpr char kAlphabet[] = "{}[]\":,\\u0123456789abcdeftrnl -.eE";
  for (int i = 0; i < 20000; ++i) {
    std::string body(rng() % 48, ' ');
    for (char& c : body) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
    parse(body);
  }
  SUCCEED();
}

}  // namespace
}  // namespace tracecar::exporter
