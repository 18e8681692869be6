#include "exporter/otlp_proto_encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "support/otlp_test_support.h"

#include "support/counting_allocator.h"

namespace tracecar::exporter {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using namespace ::tracecar::exporter::testing;

std::string encodeBatch(const std::vector<SpanRecord>& spans) {
  std::vector<const SpanRecord*> batch;
  for (const SpanRecord& s : spans) batch.push_back(&s);
  std::string out;
  OtlpProtoEncoder encoder;
  encoder.encode(testResource(), tracecarScope("0.1.0"), batch, out);
  return out;
}

std::vector<std::string> decodedFields(const std::string& payload) {
  const ProtocResult decoded = protocDecode(payload);
  EXPECT_EQ(decoded.status, 0) << decoded.err;
  return flattenTextFormat(decoded.out);
}

TEST(OtlpProtoEncoder, OfficialSchemaDecodesEveryFieldOfServerAndRootSpans) {
  const std::string rs = "resource_spans.";
  const std::string res = rs + "resource.attributes.";
  const std::string ss = rs + "scope_spans.";
  const std::string sp = ss + "spans.";
  const std::string kv = sp + "attributes.";
  const SpanRecord server = realisticServerSpan();
  const SpanRecord root = rootSpan();
  const std::vector<std::string> expected = {
      res + "key: \"service.name\"",
      res + "value.string_value: \"checkout\"",
      res + "key: \"telemetry.sdk.name\"",
      res + "value.string_value: \"tracecar\"",
      res + "key: \"telemetry.sdk.language\"",
      res + "value.string_value: \"cpp\"",
      res + "key: \"telemetry.sdk.version\"",
      res + "value.string_value: \"0.1.0\"",
      res + "key: \"k8s.pod.name\"",
      res + "value.string_value: \"checkout-7d9f\"",
      ss + "scope.name: \"tracecar\"",
      ss + "scope.version: \"0.1.0\"",
      // The server span.
      sp + "trace_id: \"" + cEscaped(server.trace_id.bytes) + "\"",
      sp + "span_id: \"" + cEscaped(server.span_id.bytes) + "\"",
      sp + "trace_state: \"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\"",
      sp + "parent_span_id: \"" + cEscaped(server.parent_span_id.bytes) + "\"",
      sp + "name: \"GET /api/v1/users/{id}\"",
      sp + "kind: SPAN_KIND_SERVER",
      sp + "start_time_unix_nano: 1700000000123456789",
      sp + "end_time_unix_nano: 1700000000173456789",
      kv + "key: \"http.request.method\"",
      kv + "value.string_value: \"GET\"",
      kv + "key: \"url.path\"",
      kv + "value.string_value: \"/api/v1/users/42\"",
      kv + "key: \"url.scheme\"",
      kv + "value.string_value: \"https\"",
      kv + "key: \"http.route\"",
      kv + "value.string_value: \"/api/v1/users/{id}\"",
      kv + "key: \"http.response.status_code\"",
      kv + "value.int_value: 503",
      kv + "key: \"server.address\"",
      kv + "value.string_value: \"users.default.svc.cluster.local\"",
      kv + "key: \"server.port\"",
      kv + "value.int_value: 8080",
      kv + "key: \"client.address\"",
      kv + "value.string_value: \"10.1.2.3\"",
      kv + "key: \"user_agent.original\"",
      kv + "value.string_value: \"curl/8.4.0\"",
      kv + "key: \"http.request.header.accept\"",
      kv + "value.array_value.values.string_value: \"application/json\"",
      kv + "value.array_value.values.string_value: \"text/*\"",
      kv + "key: \"tracecar.upstream.retried\"",
      kv + "value.bool_value: false",
      kv + "key: \"tracecar.sample_ratio\"",
      kv + "value.double_value: 0.25",
      sp + "events.time_unix_nano: 1700000000170000000",
      sp + "events.name: \"upstream reset\"",
      sp + "events.attributes.key: \"tracecar.attempt\"",
      sp + "events.attributes.value.int_value: -1",
      sp + "links.trace_id: \"" + cEscaped(server.links[0].trace_id.bytes) + "\"",
      sp + "links.span_id: \"" + cEscaped(server.links[0].span_id.bytes) + "\"",
      sp + "links.trace_state: \"rojo=1\"",
      sp + "links.attributes.key: \"link.reason\"",
      sp + "links.attributes.value.string_value: \"retry\"",
      // Link.flags (6) is newer than this schema: protoc shows it as an unknown fixed32.
      sp + "links.6: 0x00000101",
      sp + "status.message: \"upstream \\\"users\\\" answered 503\"",
      sp + "status.code: STATUS_CODE_ERROR",
      // So is Span.flags (16): sampled, has-is-remote, is-remote.
      sp + "16: 0x00000301",
      // The root span: no parent_span_id, no status, no flags; dropped counts only.
      sp + "trace_id: \"" + cEscaped(root.trace_id.bytes) + "\"",
      sp + "span_id: \"" + cEscaped(root.span_id.bytes) + "\"",
      sp + "name: \"health\"",
      sp + "kind: SPAN_KIND_INTERNAL",
      sp + "start_time_unix_nano: 1",
      sp + "end_time_unix_nano: 2",
      kv + "key: \"a\"",
      kv + "value.string_value: \"" + cEscaped("é and more than ") + "\"",
      sp + "dropped_attributes_count: 2",
      sp + "dropped_events_count: 1",
      sp + "dropped_links_count: 3",
  };
  EXPECT_THAT(decodedFields(encodeBatch({server, root})), ElementsAreArray(expected));
}

TEST(OtlpProtoEncoder, EmptyBatchStillCarriesResourceAndScope) {
  const std::vector<std::string> fields = decodedFields(encodeBatch({}));
  ASSERT_EQ(fields.size(), 12u);
  EXPECT_EQ(fields.back(), "resource_spans.scope_spans.scope.version: \"0.1.0\"");
}

TEST(OtlpProtoEncoder, MinimalSpanIsExactlyItsIds) {
  SpanRecord s;
  s.trace_id.bytes[15] = 1;
  s.span_id.bytes[7] = 2;
  s.kind = SpanKind::kUnspecified;
  const std::vector<const SpanRecord*> batch{&s};
  std::string out;
  OtlpProtoEncoder().encode(Resource(), InstrumentationScope(), batch, out);
  std::string span_bytes("\x0a\x10", 2);
  span_bytes += std::string(15, '\0') + "\x01";
  span_bytes += std::string("\x12\x08", 2) + std::string(7, '\0') + "\x02";
  const std::string scope_spans = std::string("\x0a\x00", 2) + "\x12" +
                                  static_cast<char>(span_bytes.size()) + span_bytes;
  const std::string resource_spans = std::string("\x0a\x00", 2) + "\x12" +
                                     static_cast<char>(scope_spans.size()) + scope_spans;
  EXPECT_EQ(out, "\x0a" + std::string(1, static_cast<char>(resource_spans.size())) +
                     resource_spans);
}

TEST(OtlpProtoEncoder, EmptyStringAndFalseAndZeroValuesAreStillEncoded) {
  SpanRecord s = rootSpan();
  s.attributes.clear();
  s.attributes.set("empty", std::string());
  s.attributes.set("no", false);
  s.attributes.set("zero", int64_t{0});
  s.attributes.set("zero.double", 0.0);
  s.attributes.set("no.items", StringArray{});
  const std::vector<std::string> fields = decodedFields(encodeBatch({s}));
  const std::string kv = "resource_spans.scope_spans.spans.attributes.";
  EXPECT_THAT(fields, ::testing::IsSupersetOf({kv + "value.string_value: \"\"",
                                                kv + "value.bool_value: false",
                                                kv + "value.int_value: 0",
                                                kv + "value.double_value: 0"}));
  EXPECT_THAT(fields, ::testing::Contains(kv + "key: \"no.items\""));
}

TEST(OtlpProtoEncoder, InvalidUtf8BecomesReplacementCharacter) {
  SpanRecord s = rootSpan();
  s.name = "bad\xff\xc3 tail\xe2\x82";
  const ProtocResult decoded = protocDecode(encodeBatch({s}));
  ASSERT_EQ(decoded.status, 0) << decoded.err;
  const std::string fffd = cEscaped("\xef\xbf\xbd");
  EXPECT_THAT(decoded.out, HasSubstr("name: \"bad" + fffd + fffd + " tail" + fffd + "\""));
}

// A copied key (set) is checked like any string; a static one (setStatic: the program's own
// constants, well-formed by contract) is written as it is. Both decode to the same key.
TEST(OtlpProtoEncoder, CopiedAttributeKeysAreSanitizedStaticOnesWrittenAsTheyAre) {
  SpanRecord s = rootSpan();
  s.attributes.set("copied.bad\xff", std::string("a"));
  s.attributes.set("copied.good", std::string("b"));
  s.attributes.setStaticString("static.good", "c");
  const ProtocResult decoded = protocDecode(encodeBatch({s}));
  ASSERT_EQ(decoded.status, 0) << decoded.err;
  EXPECT_THAT(decoded.out, HasSubstr("key: \"copied.bad" + cEscaped("\xef\xbf\xbd") + "\""));
  EXPECT_THAT(decoded.out, HasSubstr("key: \"copied.good\""));
  EXPECT_THAT(decoded.out, HasSubstr("key: \"static.good\""));
}

TEST(OtlpProtoEncoder, ReencodingIntoTheSameBufferAllocatesNothing) {
  std::vector<SpanRecord> spans(512, realisticServerSpan());
  std::vector<const SpanRecord*> batch;
  for (const SpanRecord& s : spans) batch.push_back(&s);
  const Resource resource = testResource();
  const InstrumentationScope scope = tracecarScope("0.1.0");
  OtlpProtoEncoder encoder;
  std::string out;
  encoder.encode(resource, scope, batch, out);
  const std::string first = out;
  const size_t before = g_allocations.load();
  encoder.encode(resource, scope, batch, out);
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(out, first);
}

TEST(OtlpProtoEncoder, SmallerBatchAfterLargerOneLeavesNoStaleBytes) {
  const std::vector<SpanRecord> large(50, realisticServerSpan());
  const std::vector<SpanRecord> small{rootSpan()};
  std::vector<const SpanRecord*> large_batch;
  for (const SpanRecord& s : large) large_batch.push_back(&s);
  const std::vector<const SpanRecord*> small_batch{&small[0]};
  OtlpProtoEncoder encoder;
  std::string out;
  encoder.encode(testResource(), tracecarScope("0.1.0"), large_batch, out);
  encoder.encode(testResource(), tracecarScope("0.1.0"), small_batch, out);
  EXPECT_EQ(out, encodeBatch(small));
}

// --- Randomized round trips -------------------------------------------------------------

std::string randomString(std::mt19937_64& rng) {
  static constexpr std::string_view kPieces[] = {"a", "Z", "/", " ", "é", "€", "😀",
                                                  "\"", "\\", "\n", "\x01", "\xff", "\xe2\x82"};
  std::string s;
  const size_t n = rng() % 12;
  for (size_t i = 0; i < n; ++i) s += kPieces[rng() % std::size(kPieces)];
  if (rng() % 8 == 0) s += std::string(200 + rng() % 200, 'x');  // multi-byte length varints
  return s;
}

AttributeValue randomValue(std::mt19937_64& rng) {
  switch (rng() % 5) {
    case 0: return randomString(rng);
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<int64_t>(rng());
    case 3: return std::ldexp(static_cast<double>(rng() % 1000) - 500, -3);
    default: {
      StringArray a(rng() % 4);
      for (auto& item : a) item = randomString(rng);
      return a;
    }
  }
}

void randomAttributes(std::mt19937_64& rng, Attributes& attrs) {
  const size_t n = rng() % 6;
  for (size_t i = 0; i < n; ++i) attrs.set("k" + std::to_string(i), randomValue(rng));
}

SpanRecord randomSpan(std::mt19937_64& rng) {
  SpanRecord s;
  for (auto& b : s.trace_id.bytes) b = static_cast<uint8_t>(rng());
  for (auto& b : s.span_id.bytes) b = static_cast<uint8_t>(rng());
  if (rng() % 2 == 0) s.parent_span_id = SpanId::fromU64(rng() | 1);
  if (rng() % 3 == 0) s.trace_state = "k=" + std::to_string(rng());
  s.flags = static_cast<uint32_t>(rng() % 0x400);
  s.name = randomString(rng);
  s.kind = static_cast<SpanKind>(rng() % 6);
  s.start_unix_nano = rng() % 2 == 0 ? 0 : rng();
  s.end_unix_nano = rng();
  randomAttributes(rng, s.attributes);
  for (size_t i = rng() % 3; i > 0; --i) {
    SpanEvent e;
    e.name = randomString(rng);
    e.time_unix_nano = rng();
    randomAttributes(rng, e.attributes);
    s.events.push_back(std::move(e));
  }
  for (size_t i = rng() % 3; i > 0; --i) {
    SpanLink l;
    l.trace_id = propagation::IdGenerator(rng()).newTraceId();
    l.span_id = SpanId::fromU64(rng() | 1);
    l.flags = static_cast<uint32_t>(rng() % 0x400);
    randomAttributes(rng, l.attributes);
    s.links.push_back(std::move(l));
  }
  s.dropped_events = static_cast<uint32_t>(rng() % 3);
  s.dropped_links = static_cast<uint32_t>(rng() % 3);
  s.status_code = static_cast<StatusCode>(rng() % 3);
  if (rng() % 2 == 0) s.status_message = randomString(rng);
  return s;
}

// Which length-delimited fields hold messages, per message type of the OTLP schema.
enum class Msg { kRequest, kResourceSpans, kResource, kScopeSpans, kScope, kSpan, kEvent, kLink,
                 kStatus, kKeyValue, kAnyValue, kArrayValue, kString };
Msg childOf(Msg parent, uint64_t field) {
  static const std::map<std::pair<Msg, uint64_t>, Msg> kChildren = {
      {{Msg::kRequest, 1}, Msg::kResourceSpans}, {{Msg::kResourceSpans, 1}, Msg::kResource},
      {{Msg::kResourceSpans, 2}, Msg::kScopeSpans}, {{Msg::kResource, 1}, Msg::kKeyValue},
      {{Msg::kScopeSpans, 1}, Msg::kScope},       {{Msg::kScopeSpans, 2}, Msg::kSpan},
      {{Msg::kSpan, 9}, Msg::kKeyValue},          {{Msg::kSpan, 11}, Msg::kEvent},
      {{Msg::kSpan, 13}, Msg::kLink},             {{Msg::kSpan, 15}, Msg::kStatus},
      {{Msg::kEvent, 3}, Msg::kKeyValue},         {{Msg::kLink, 4}, Msg::kKeyValue},
      {{Msg::kKeyValue, 2}, Msg::kAnyValue},      {{Msg::kAnyValue, 5}, Msg::kArrayValue},
      {{Msg::kArrayValue, 1}, Msg::kAnyValue}};
  const auto it = kChildren.find({parent, field});
  return it == kChildren.end() ? Msg::kString : it->second;
}

struct WalkCounts {
  size_t spans = 0;
  size_t key_values = 0;
  size_t events = 0;
  size_t links = 0;
};

// Walks a message: every length must fit its parent exactly and be the shortest varint for its
// value, every string must be UTF-8.
bool walk(std::string_view in, Msg type, WalkCounts& counts) {
  size_t pos = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
      const auto b = static_cast<uint8_t>(in[pos++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  while (pos < in.size()) {
    uint64_t tag = 0;
    uint64_t v = 0;
    if (!varint(tag)) return false;
    switch (tag & 7) {
      case 0: if (!varint(v)) return false; break;
      case 1: if ((pos += 8) > in.size()) return false; break;
      case 5: if ((pos += 4) > in.size()) return false; break;
      case 2: {
        const size_t length_at = pos;
        if (!varint(v) || v > in.size() - pos) return false;
        size_t shortest = 1;
        for (uint64_t rest = v; rest >= 0x80; rest >>= 7) ++shortest;
        if (pos - length_at != shortest) return false;
        const std::string_view body = in.substr(pos, v);
        pos += v;
        const Msg child = childOf(type, tag >> 3);
        if (child == Msg::kSpan) ++counts.spans;
        if (child == Msg::kKeyValue) ++counts.key_values;
        if (child == Msg::kEvent) ++counts.events;
        if (child == Msg::kLink) ++counts.links;
        const uint64_t field = tag >> 3;
        const bool id_bytes = (type == Msg::kSpan && (field == 1 || field == 2 || field == 4)) ||
                              (type == Msg::kLink && (field == 1 || field == 2));
        if (child != Msg::kString) {
          if (!walk(body, child, counts)) return false;
        } else if (!id_bytes && !utf8::isValid(body)) {
          return false;
        }
        break;
      }
      default: return false;
    }
  }
  return true;
}

WalkCounts expectedCounts(const std::vector<SpanRecord>& spans, const Resource& resource) {
  WalkCounts c;
  c.key_values = resource.attributes().size();
  for (const SpanRecord& s : spans) {
    ++c.spans;
    c.key_values += s.attributes.size();
    c.events += s.events.size();
    c.links += s.links.size();
    for (const auto& e : s.events) c.key_values += e.attributes.size();
    for (const auto& l : s.links) c.key_values += l.attributes.size();
  }
  return c;
}

TEST(OtlpProtoEncoder, RandomBatchesHaveConsistentLengthsAndCounts) {
  std::mt19937_64 rng(20261121);
  const Resource resource = testResource();
  OtlpProtoEncoder encoder;
  std::string out;
  for (int round = 0; round < 500; ++round) {
    std::vector<SpanRecord> spans(rng() % 20);
    for (auto& s : spans) s = randomSpan(rng);
    std::vector<const SpanRecord*> batch;
    for (const SpanRecord& s : spans) batch.push_back(&s);
    encoder.encode(resource, tracecarScope("0.1.0"), batch, out);
    WalkCounts got;
    ASSERT_TRUE(walk(out, Msg::kRequest, got)) << "round " << round;
    const WalkCounts want = expectedCounts(spans, resource);
    ASSERT_EQ(got.spans, want.spans) << "round " << round;
    ASSERT_EQ(got.key_values, want.key_values) << "round " << round;
    ASSERT_EQ(got.events, want.events) << "round " << round;
    ASSERT_EQ(got.links, want.links) << "round " << round;
  }
}

// Each nested message's length is written into room reserved before its body: lengths of every
// size, larger and smaller than that room, and batches larger and smaller than the one before.
TEST(OtlpProtoEncoder, LengthsOfEverySizeAreShortestVarints) {
  const Resource resource = testResource();
  OtlpProtoEncoder encoder;
  std::string out;
  for (const size_t name_size : {0u, 90u, 127u, 128u, 16'300u, 16'384u, 2'100'000u, 300u, 0u}) {
    for (const size_t count : {1u, 3u}) {
      std::vector<SpanRecord> spans(count, rootSpan());
      spans[0].name = std::string(name_size, 'n');
      spans[0].attributes.set("long", std::string(name_size / 2, 'v'));
      std::vector<const SpanRecord*> batch;
      for (const SpanRecord& s : spans) batch.push_back(&s);
      encoder.encode(resource, tracecarScope("0.1.0"), batch, out);
      WalkCounts got;
      ASSERT_TRUE(walk(out, Msg::kRequest, got)) << name_size << " x" << count;
      EXPECT_EQ(got.spans, count);
      EXPECT_EQ(out, encodeBatch(spans)) << name_size << " x" << count;
    }
  }
}

TEST(OtlpProtoEncoder, RandomBatchesDecodeWithOfficialSchema) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::vector<SpanRecord> spans(1 + rng() % 10);
    for (auto& s : spans) s = randomSpan(rng);
    const ProtocResult decoded = protocDecode(encodeBatch(spans));
    ASSERT_EQ(decoded.status, 0) << "round " << round << ": " << decoded.err;
    const std::vector<std::string> fields = flattenTextFormat(decoded.out);
    const auto count = [&fields](std::string_view prefix) {
      return std::count_if(fields.begin(), fields.end(),
                           [prefix](const std::string& f) { return f.starts_with(prefix); });
    };
    EXPECT_EQ(count("resource_spans.scope_spans.spans.span_id: "),
              static_cast<ptrdiff_t>(spans.size()));
    EXPECT_EQ(count("resource_spans.scope_spans.spans.events.time_unix_nano: "),
              static_cast<ptrdiff_t>(expectedCounts(spans, testResource()).events));
  }
}

// A span encoded by the thread that ended it (SpanRecord::encoded) is copied into the batch:
// the batch's bytes are the same whichever of its spans carry their own encoding.
TEST(OtlpProtoEncoder, SpansCarryingTheirOwnEncodingGiveTheSameBytes) {
  std::mt19937_64 rng(20261123);
  const Resource resource = testResource();
  OtlpProtoEncoder encoder;
  std::string fields_only;
  std::string mixed;
  for (int round = 0; round < 300; ++round) {
    std::vector<SpanRecord> spans(rng() % 12);
    for (auto& s : spans) s = randomSpan(rng);
    if (round % 50 == 0 && !spans.empty()) spans[0].name = std::string(20'000, 'n');  // 3-byte length
    std::vector<const SpanRecord*> batch;
    for (const SpanRecord& s : spans) batch.push_back(&s);
    encoder.encode(resource, tracecarScope("0.1.0"), batch, fields_only);
    for (size_t i = 0; i < spans.size(); ++i) {
      if ((i + round) % 3 != 0) OtlpProtoEncoder::encodeSpan(spans[i], spans[i].encoded);
    }
    encoder.encode(resource, tracecarScope("0.1.0"), batch, mixed);
    ASSERT_EQ(mixed, fields_only) << "round " << round;
  }
}

TEST(OtlpProtoEncoder, SpanEncodingIsTheSpanMessageOfTheBatch) {
  SpanRecord span = realisticServerSpan();
  OtlpProtoEncoder::encodeSpan(span, span.encoded);
  const std::string batch = encodeBatch({span});
  // The batch ends with the span: field 2 of ScopeSpans, its length, then the encoding.
  ASSERT_GT(batch.size(), span.encoded.size() + 3);
  EXPECT_TRUE(batch.ends_with(span.encoded));
  const size_t length_at = batch.size() - span.encoded.size() - 2;  // a 2-byte length
  EXPECT_EQ(batch[length_at - 1], '\x12');
  EXPECT_EQ(static_cast<uint8_t>(batch[length_at]) & 0x7f, span.encoded.size() & 0x7f);
  EXPECT_EQ(static_cast<uint8_t>(batch[length_at + 1]), span.encoded.size() >> 7);
}

TEST(OtlpProtoEncoder, EncodingASpanIntoItsOwnBufferAgainAllocatesNothing) {
  const SpanRecord span = realisticServerSpan();
  std::string out;
  OtlpProtoEncoder::encodeSpan(span, out);
  const std::string first = out;
  out.clear();  // as SpanRecord::clearForReuse leaves it
  const size_t before = g_allocations.load();
  OtlpProtoEncoder::encodeSpan(span, out);
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(out, first);
}

// --- ExportTraceServiceResponse -----------------------------------------------------------

TEST(ParseExportTraceServiceResponse, EmptyBodyIsFullSuccess) {
  uint64_t rejected = 7;
  std::string message = "stale";
  EXPECT_TRUE(parseExportTraceServiceResponse("", rejected, message));
  EXPECT_EQ(rejected, 0u);
  EXPECT_EQ(message, "");
}

TEST(ParseExportTraceServiceResponse, ReadsPartialSuccess) {
  const std::string partial = std::string("\x08\x03\x12\x04", 4) + "full";
  const std::string body = "\x0a" + std::string(1, static_cast<char>(partial.size())) + partial;
  uint64_t rejected = 0;
  std::string message;
  ASSERT_TRUE(parseExportTraceServiceResponse(body, rejected, message));
  EXPECT_EQ(rejected, 3u);
  EXPECT_EQ(message, "full");
}

TEST(ParseExportTraceServiceResponse, SkipsUnknownFieldsOfEveryWireType) {
  const std::string partial = std::string("\x18\x05\x21", 3) + std::string(8, 'x') +
                              std::string("\x08\x96\x01\x2d", 4) + "abcd";
  const std::string body = std::string("\x10\x01\x1a\x02zz", 6) + "\x0a" +
                           std::string(1, static_cast<char>(partial.size())) + partial;
  uint64_t rejected = 0;
  std::string message;
  ASSERT_TRUE(parseExportTraceServiceResponse(body, rejected, message));
  EXPECT_EQ(rejected, 150u);
}

TEST(ParseExportTraceServiceResponse, NegativeRejectedCountReadsAsZero) {
  const std::string partial = std::string("\x08", 1) + std::string(9, '\xff') + "\x01";
  const std::string body = "\x0a" + std::string(1, static_cast<char>(partial.size())) + partial;
  uint64_t rejected = 9;
  std::string message;
  ASSERT_TRUE(parseExportTraceServiceResponse(body, rejected, message));
  EXPECT_EQ(rejected, 0u);
}

TEST(ParseExportTraceServiceResponse, RejectsMalformedBodies) {
  uint64_t rejected = 0;
  std::string message;
  for (std::string_view bad :
       {std::string_view("\x0a\x05\x08\x01", 4), std::string_view("\x08", 1),
        std::string_view("\x0b\x00", 2), std::string_view("\x00\x00", 2),
        std::string_view("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11),
        std::string_view("\x0a\x02\x12\x05", 4), std::string_view("<html>", 6)}) {
    EXPECT_FALSE(parseExportTraceServiceResponse(bad, rejected, message)) << bad;
  }
}

TEST(ParseExportTraceServiceResponse, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(7);
  uint64_t rejected = 0;
  std::string message;
  for (int i = 0; i < 20000; ++i) {
    std::string body(rng() % 40, '\0');
    for (char& c : body) c = static_cast<char>(rng());
    parseExportTraceServiceResponse(body, rejected, message);
  }
  SUCCEED();
}

}  // namespace
}  // namespace tracecar::exporter
