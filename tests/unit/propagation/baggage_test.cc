#include "propagation/baggage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace tracecar::propagation {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

struct Parsed {
  Baggage baggage;
  BaggageReport report;
};

Parsed parse(std::string_view text, const BaggageLimits& limits = {}) {
  Parsed p;
  p.report = p.baggage.parse(text, limits);
  return p;
}

using MemberTuple = std::tuple<std::string, std::string, std::string>;

std::vector<MemberTuple> members(const Baggage& b) {
  std::vector<MemberTuple> out;
  for (size_t i = 0; i < b.size(); ++i) {
    const Baggage::Member m = b.member(i);
    out.emplace_back(m.key, m.raw_value, m.properties);
  }
  return out;
}

// "k<i>=vvv..." exactly length bytes long (length >= key size + 1).
std::string sizedMember(size_t i, size_t length) {
  std::string m = "k" + std::to_string(i) + "=";
  m.resize(length, 'v');
  return m;
}

// count members joined by ',' totalling exactly total bytes; all 100 bytes but the last.
std::string listOfLength(size_t count, size_t total) {
  std::string out;
  for (size_t i = 0; i + 1 < count; ++i) out += sizedMember(i, 100) + ",";
  out += sizedMember(count - 1, total - out.size());
  return out;
}

std::string smallMembers(size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += (i ? "," : "") + ("k" + std::to_string(i) + "=v");
  return out;
}

// Independent of the implementation: a plain reading of RFC 3629.
bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    const uint8_t c = b(i);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((b(i + k) & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b(i + k) & 0x3fu);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

// --- grammar ---------------------------------------------------------------------------------

TEST(Baggage, KeepsValidMembersByteExact) {
  const std::string_view cases[] = {
      "k=v",
      "k=",
      "k = v",
      "k\t=\tv",
      "k =",
      "!#$%&'*+-.^_`|~09azAZ=v",
      "k==v",  // '=' is a baggage-octet
      "k=v=w",
      "k=!#$%&'()*+-./:<=>?@[]^_`{|}~09azAZ",
      "k=%41",
      "k=%",
      "k=%zz",
      "k=100%",
      "k=v;p",
      "k=v;p=1",
      "k=v;p=",
      "k=v;p=a=b",
      "k=v;p;q=2;r",
      "k = v ; p = 1 ; q",
      "k=\t;\tp",
      "k=v;p ;q",
      "k=v;p=1 ;q= ;r",
  };
  for (std::string_view in : cases) {
    const Parsed p = parse(in);
    EXPECT_EQ(p.report.dropped(), 0u) << in;
    EXPECT_EQ(p.report.kept, 1u) << in;
    EXPECT_EQ(p.baggage.toString(), in) << in;
  }
}

TEST(Baggage, SkipsAndCountsInvalidMembers) {
  const std::string_view cases[] = {
      "=v",          // empty key
      "k",           // no '='
      "k v=1",       // space in key
      "k=v w",       // space in value
      "k=\"v\"",     // DQUOTE
      "k=a\\b",      // backslash
      "k=a\x01",     // control character
      "k=a\x7f",     // DEL
      "k=caf\xc3\xa9",  // raw non-ASCII
      "k\xc3\xa9=v",    // non-ASCII key
      "(k)=v",
      "k@=v",
      "k:=v",
      "k/=v",
      "{k}=v",
      "k=v;",        // property needs a key
      "k=v;;p",
      "k=v;=1",
      "k=v;p=a b",
      "k=v;p=\"",
      "k=v;p q",
      "k=v;p@=1",
      "k=v p",
      "k=v;p=1=\\",
  };
  for (std::string_view in : cases) {
    const Parsed p = parse(in);
    EXPECT_EQ(p.report.dropped_invalid, 1u) << in;
    EXPECT_EQ(p.report.kept, 0u) << in;
    EXPECT_TRUE(p.baggage.empty()) << in;
  }
}

TEST(Baggage, KeyAcceptsExactlyTheTokenCharacters) {
  const std::string_view tchar = "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool want = (c < 0x80 && std::isalnum(c) != 0) || tchar.find(ch) != tchar.npos;
    EXPECT_EQ(Baggage::isValidKey(std::string("a") + ch + "b"), want) << c;
    if (ch == ',' || ch == ' ' || ch == '\t' || ch == '=') continue;  // separators, not keys
    const Parsed p = parse(std::string("a") + ch + "b=v");
    EXPECT_EQ(p.baggage.size(), want ? 1u : 0u) << c;
  }
  EXPECT_FALSE(Baggage::isValidKey(""));
}

TEST(Baggage, ValueAcceptsExactlyTheBaggageOctets) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    if (ch == ',' || ch == ';') continue;  // separators: covered by their own tests
    const bool want = (c == 0x21) || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
                      (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
    const Parsed value = parse(std::string("k=a") + ch + "b");
    EXPECT_EQ(value.baggage.size(), want ? 1u : 0u) << c;
    EXPECT_EQ(value.report.dropped_invalid, want ? 0u : 1u) << c;
    const Parsed property = parse(std::string("k=v;p=a") + ch + "b");
    EXPECT_EQ(property.baggage.size(), want ? 1u : 0u) << c;
  }
}

TEST(Baggage, KeepsValidMembersAroundInvalidOnes) {
  const Parsed p = parse("a=1,bad,b=2,k=v w,c=3");
  EXPECT_EQ(p.baggage.toString(), "a=1,b=2,c=3");
  EXPECT_EQ(p.report.kept, 3u);
  EXPECT_EQ(p.report.dropped_invalid, 2u);
}

TEST(Baggage, SkipsEmptyMembersSilently) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", ""},
      {" ", ""},
      {"\t \t", ""},
      {",", ""},
      {",,,", ""},
      {",a=1,,b=2, ,\t,", "a=1,b=2"},
      {"a=1,", "a=1"},
      {",a=1", "a=1"},
  };
  for (auto [in, want] : cases) {
    const Parsed p = parse(in);
    EXPECT_EQ(p.baggage.toString(), want) << in;
    EXPECT_EQ(p.report.dropped(), 0u) << in;
  }
}

TEST(Baggage, TrimsOnlyTheOwsAroundEachMember) {
  EXPECT_EQ(parse("  a=1  ,\tb=2\t").baggage.toString(), "a=1,b=2");
  EXPECT_EQ(parse(" a = 1 ; p = x , b\t=\t2 ").baggage.toString(), "a = 1 ; p = x,b\t=\t2");
}

TEST(Baggage, CombinesMultipleFieldsAsIfJoinedWithComma) {
  const std::string_view fields[] = {"a=1", "b=2, c=3", "", " ", "d=4;p"};
  Baggage b;
  const BaggageReport r = b.parse(fields);
  EXPECT_EQ(b.toString(), "a=1,b=2,c=3,d=4;p");
  EXPECT_EQ(r.kept, 4u);
  EXPECT_EQ(r.dropped(), 0u);
}

TEST(Baggage, FieldsDoNotRunTogether) {
  const std::string_view fields[] = {"a=1,b", "=2"};
  Baggage b;
  const BaggageReport r = b.parse(fields);
  EXPECT_EQ(b.toString(), "a=1");
  EXPECT_EQ(r.dropped_invalid, 2u);
}

TEST(Baggage, ParseReplacesPreviousContents) {
  Baggage b;
  b.parse("a=1,b=2");
  b.parse("c=3");
  EXPECT_EQ(b.toString(), "c=3");
  b.parse("");
  EXPECT_TRUE(b.empty());
}

TEST(Baggage, KeepsDuplicateKeysAsReceived) {
  const Parsed p = parse("k=1,j=2,k=3");
  EXPECT_EQ(p.baggage.toString(), "k=1,j=2,k=3");
  EXPECT_EQ(p.baggage.value("k"), "3");
}

// --- member views --------------------------------------------------------------------------

TEST(Baggage, MemberExposesRawParts) {
  const Parsed p = parse("a=%41,b = x ; p = 1;q, c=");
  ASSERT_EQ(p.baggage.size(), 3u);
  EXPECT_EQ(members(p.baggage), (std::vector<MemberTuple>{
                                    {"a", "%41", ""},
                                    {"b", "x", " p = 1;q"},
                                    {"c", "", ""},
                                }));
  const Baggage::Member none = p.baggage.member(3);
  EXPECT_TRUE(none.key.empty() && none.raw_value.empty() && none.properties.empty());
}

// --- decoding ---------------------------------------------------------------------------------

TEST(Baggage, ValueDecodesPercentEncoding) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"%41", "A"},
      {"caf%C3%A9", "caf\xc3\xa9"},
      {"caf%c3%a9", "caf\xc3\xa9"},
      {"%E2%82%AC", "\xe2\x82\xac"},
      {"%F0%9F%98%80", "\xf0\x9f\x98\x80"},
      {"%D7%A9%D7%9C%D7%95%D7%9D", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"},
      {"a%20b", "a b"},
      {"a+b", "a+b"},  // not form encoding
      {"%2C%3B%22%5C", ",;\"\\"},
      {"%00", std::string_view("\0", 1)},
      {"", ""},
  };
  for (auto [raw, want] : cases) {
    EXPECT_EQ(Baggage::decodeValue(raw), want) << raw;
    const Parsed p = parse("k=" + std::string(raw));
    EXPECT_EQ(p.baggage.value("k"), want) << raw;
    EXPECT_EQ(p.baggage.member(0).raw_value, raw) << raw;  // pass-through stays encoded
  }
}

TEST(Baggage, KeepsPercentNotFollowedByTwoHexDigitsLiteral) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"%", "%"},     {"%4", "%4"},   {"a%", "a%"},     {"%zz", "%zz"},
      {"%4g", "%4g"}, {"%g4", "%g4"}, {"%%41", "%A"},   {"100%", "100%"},
      {"%%", "%%"},   {"%4%41", "%4A"},
  };
  for (auto [raw, want] : cases) EXPECT_EQ(Baggage::decodeValue(raw), want) << raw;
}

TEST(Baggage, ReplacesInvalidUtf8WithReplacementCharacter) {
  const std::string r(kReplacement);
  const std::pair<std::string_view, std::string> cases[] = {
      {"%FF", r},
      {"%80", r},
      {"%C3", r},                          // truncated two-byte sequence
      {"%C3%28", r + "("},
      {"%E2%82", r},                       // maximal subpart: one replacement
      {"%E2%82%41", r + "A"},
      {"%F0%9F%98", r},
      {"%C0%AF", r + r},                   // overlong
      {"%E0%80%AF", r + r + r},            // overlong
      {"%ED%A0%80", r + r + r},            // surrogate
      {"%F4%90%80%80", r + r + r + r},     // above U+10FFFF
      {"a%F5b", "a" + r + "b"},
      {"%C3%A9%FF%C3%A9", "\xc3\xa9" + r + "\xc3\xa9"},
      {"%EF%BF%BD", r},                    // a real U+FFFD passes through
  };
  for (const auto& [raw, want] : cases) {
    const std::string got = Baggage::decodeValue(raw);
    EXPECT_EQ(got, want) << raw;
    EXPECT_TRUE(isValidUtf8(got)) << raw;
  }
}

// --- encoding -----------------------------------------------------------------------------

TEST(Baggage, EncodesEveryNonOctetAndPercentAsUppercaseHex) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"abc", "abc"},         {"a b", "a%20b"},       {"%", "%25"},
      {",", "%2C"},           {";", "%3B"},           {"\"", "%22"},
      {"\\", "%5C"},          {"\x7f", "%7F"},        {"\t", "%09"},
      {"=", "="},             {"caf\xc3\xa9", "caf%C3%A9"},
      {std::string_view("\0", 1), "%00"},
  };
  for (auto [in, want] : cases) {
    std::string out = "x";
    Baggage::encodeValue(in, out);
    EXPECT_EQ(out, "x" + std::string(want)) << in;  // appends
  }
}

TEST(Baggage, EncodeDecodeRoundTripsValidUtf8) {
  std::mt19937 rng(1234);
  const std::string_view alphabet[] = {"a", "Z", "0", " ", "%", ",", ";", "=", "\"", "\\",
                                       "\t", std::string_view("\0", 1), "\x7f", "\xc3\xa9",
                                       "\xe2\x82\xac", "\xf0\x9f\x98\x80", "%41", "+"};
  for (int iter = 0; iter < 500; ++iter) {
    std::string value;
    const size_t n = rng() % 20;
    for (size_t i = 0; i < n; ++i) value += alphabet[rng() % std::size(alphabet)];
    std::string encoded;
    Baggage::encodeValue(value, encoded);
    EXPECT_EQ(Baggage::decodeValue(encoded), value);
    EXPECT_EQ(parse("k=" + encoded).report.kept, 1u) << encoded;
  }
}

// --- modification -------------------------------------------------------------------------

TEST(Baggage, SetAppendsEncodedMember) {
  Baggage b;
  b.parse("a=1");
  ASSERT_TRUE(b.set("user", "J\xc3\xb6rg O'Neil, 100%"));
  EXPECT_EQ(b.toString(), "a=1,user=J%C3%B6rg%20O'Neil%2C%20100%25");
  EXPECT_EQ(b.value("user"), "J\xc3\xb6rg O'Neil, 100%");
  EXPECT_EQ(b.serializedLength(), b.toString().size());
}

TEST(Baggage, SetReplacesEveryMemberWithThatKeyByOneAtTheEnd) {
  Baggage b;
  b.parse("k=1,a=2,k=3;p,b=4");
  ASSERT_TRUE(b.set("k", "new"));
  EXPECT_EQ(b.toString(), "a=2,b=4,k=new");
  EXPECT_EQ(b.value("k"), "new");
}

TEST(Baggage, SetKeepsValidProperties) {
  Baggage b;
  ASSERT_TRUE(b.set("k", "v", "p;q=1"));
  ASSERT_TRUE(b.set("j", "", " \tr = 2 ; s \t"));  // OWS around is trimmed
  ASSERT_TRUE(b.set("e", "x", "  "));
  EXPECT_EQ(b.toString(), "k=v;p;q=1,j=;r = 2 ; s,e=x");
  EXPECT_EQ(members(b), (std::vector<MemberTuple>{
                            {"k", "v", "p;q=1"}, {"j", "", "r = 2 ; s"}, {"e", "x", ""}}));
  EXPECT_EQ(b.value("j"), "");
}

TEST(Baggage, SetRejectsBadKeyOrPropertiesWithoutChange) {
  Baggage b;
  b.parse("k=1");
  for (std::string_view key : {"", "a b", "k=", "k,", "\xc3\xa9", "a;b"}) {
    EXPECT_FALSE(b.set(key, "v")) << key;
  }
  for (std::string_view props : {";", "p;", "p;;q", "=1", "p=a b", "p=\"", "p,q", "p=1;"}) {
    EXPECT_FALSE(b.set("k", "v", props)) << props;
  }
  EXPECT_EQ(b.toString(), "k=1");
}

TEST(Baggage, PropertiesFromMemberCanBeSetBack) {
  Baggage b;
  b.parse("k=v ; p = 1;q");
  const std::string props(b.member(0).properties);
  EXPECT_TRUE(Baggage::isValidProperties(props));
  ASSERT_TRUE(b.set("j", "w", props));
  EXPECT_EQ(b.member(1).properties, "p = 1;q");
}

TEST(Baggage, SetWithNonUtf8BytesDecodesToReplacement) {
  Baggage b;
  ASSERT_TRUE(b.set("k", "a\xff"));
  EXPECT_EQ(b.toString(), "k=a%FF");
  EXPECT_EQ(b.value("k"), "a" + std::string(kReplacement));
}

TEST(Baggage, EraseRemovesEveryMemberWithThatKey) {
  Baggage b;
  b.parse("k=1,a=2,k=3");
  EXPECT_TRUE(b.erase("k"));
  EXPECT_EQ(b.toString(), "a=2");
  EXPECT_FALSE(b.erase("k"));
  EXPECT_FALSE(b.value("k").has_value());
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.toString(), "");
}

// The key may be a view into the baggage itself (from member()); set and erase must not read
// it after moving members around.
TEST(Baggage, SetWithItsOwnMemberKeyIsSafe) {
  Parsed p = parse("first=1,second=2,third=3");
  p.baggage.set(p.baggage.member(0).key, "one");
  EXPECT_EQ(members(p.baggage), (std::vector<MemberTuple>{
                                    {"second", "2", ""}, {"third", "3", ""}, {"first", "one", ""}}));
}

TEST(Baggage, EraseWithItsOwnMemberKeyIsSafe) {
  Parsed p = parse("first=1,second=2,first=again,third=3");
  EXPECT_TRUE(p.baggage.erase(p.baggage.member(0).key));
  EXPECT_EQ(members(p.baggage),
            (std::vector<MemberTuple>{{"second", "2", ""}, {"third", "3", ""}}));
}

TEST(Baggage, KeysAreCaseSensitive) {
  Baggage b;
  b.parse("Key=1,key=2");
  EXPECT_EQ(b.value("Key"), "1");
  EXPECT_EQ(b.value("key"), "2");
  EXPECT_FALSE(b.value("KEY").has_value());
}

TEST(Baggage, MatchesWholeKeysOnly) {
  Baggage b;
  b.parse("k1=1,ke=2");
  EXPECT_FALSE(b.value("k").has_value());
  EXPECT_FALSE(b.value("k12").has_value());
  EXPECT_FALSE(b.erase("k"));
  ASSERT_TRUE(b.set("k", "0"));
  EXPECT_EQ(b.toString(), "k1=1,ke=2,k=0");
}

// --- merge ----------------------------------------------------------------------------------

std::string merged(std::string_view list, std::string_view key, std::string_view value,
                   Baggage::KeyMatch match = Baggage::KeyMatch::kExact, bool want_change = true) {
  Baggage b;
  b.parse(list);
  EXPECT_EQ(b.merge(key, value, match), want_change) << list << " <- " << key << "=" << value;
  return b.toString();
}

TEST(Baggage, MergeOfTheSameValueChangesNothing) {
  const std::string list = "a=1,k=v;p1;ttl=30,z=2";
  EXPECT_EQ(merged(list, "k", "v", Baggage::KeyMatch::kExact, false), list);
  EXPECT_EQ(merged(list, "a", "1", Baggage::KeyMatch::kExact, false), list);
}

TEST(Baggage, MergeComparesDecodedValues) {
  const std::string list = "k=v%41;p,e=caf%c3%a9,pct=100%25,lit=100%zz";
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"k", "vA"}, {"e", "caf\xc3\xa9"}, {"pct", "100%"}, {"lit", "100%zz"}}) {
    EXPECT_EQ(merged(list, key, value, Baggage::KeyMatch::kExact, false), list) << key;
  }
  EXPECT_EQ(merged(list, "pct", "100%25"), "k=v%41;p,e=caf%c3%a9,pct=100%2525,lit=100%zz");
}

TEST(Baggage, MergeComparesValuesAsValueReadsThem) {
  // Invalid UTF-8 reads as U+FFFD on either side.
  EXPECT_EQ(merged("k=a%FF;p", "k", "a" + std::string(kReplacement),
                   Baggage::KeyMatch::kExact, false),
            "k=a%FF;p");
  EXPECT_EQ(merged("k=a%EF%BF%BD;p", "k", "a\xff", Baggage::KeyMatch::kExact, false),
            "k=a%EF%BF%BD;p");
  EXPECT_EQ(merged("k=a%C3%A9;p", "k", "a\xff"), "k=a%FF");
  EXPECT_EQ(merged("k=a%FF;p", "k", "a\xc3\xa9"), "k=a%C3%A9");
}

TEST(Baggage, MergeOfANewValueReplacesTheMemberInPlaceWithoutProperties) {
  EXPECT_EQ(merged("a=1,k=v;p1;ttl=30,z=2", "k", "new value"), "a=1,k=new%20value,z=2");
  EXPECT_EQ(merged("a=1,k=v;p1;ttl=30,z=2", "a", ""), "a=,k=v;p1;ttl=30,z=2");
}

TEST(Baggage, MergeAppendsAKeyNoMemberHas) {
  EXPECT_EQ(merged("a=1;p,z=2", "k", "v,w"), "a=1;p,z=2,k=v%2Cw");
  EXPECT_EQ(merged("", "k", "v"), "k=v");
}

TEST(Baggage, MergeKeepsDuplicatesWhenTheLastHasTheValue) {
  const std::string list = "k=1;p,a=2,k=3;q,b=4";
  EXPECT_EQ(merged(list, "k", "3", Baggage::KeyMatch::kExact, false), list);
}

TEST(Baggage, MergeOfANewValueLeavesOneMemberWhereTheLastDuplicateWas) {
  EXPECT_EQ(merged("k=1;p,a=2,k=3;q,b=4", "k", "1"), "a=2,k=1,b=4");
  EXPECT_EQ(merged("k=1,k=2,k=3", "k", "x"), "k=x");
}

TEST(Baggage, MergeExactMatchesKeysCaseSensitively) {
  EXPECT_EQ(merged("Key=1;p,b=2", "key", "1"), "Key=1;p,b=2,key=1");
  EXPECT_EQ(merged("Key=1,key=2", "key", "2", Baggage::KeyMatch::kExact, false), "Key=1,key=2");
  EXPECT_EQ(merged("Key=1,a=0,key=2", "key", "9"), "Key=1,a=0,key=9");
}

TEST(Baggage, MergeIgnoringCaseKeepsTheMembersKeySpelling) {
  constexpr Baggage::KeyMatch kAnyCase = Baggage::KeyMatch::kIgnoreCase;
  EXPECT_EQ(merged("userId=42;p,b=1", "userid", "42", kAnyCase, false), "userId=42;p,b=1");
  EXPECT_EQ(merged("userId=42;p,b=1", "userid", "7", kAnyCase), "userId=7,b=1");
  EXPECT_EQ(merged("Key=1,a=0,KEY=2", "key", "2", kAnyCase, false), "Key=1,a=0,KEY=2");
  EXPECT_EQ(merged("Key=1,a=0,KEY=2", "key", "9", kAnyCase), "a=0,KEY=9");
  EXPECT_EQ(merged("ke=1,kex=2", "KE", "1", kAnyCase, false), "ke=1,kex=2");  // whole keys only
  EXPECT_EQ(merged("k1=1", "K", "1", kAnyCase), "k1=1,K=1");
}

TEST(Baggage, MergeRejectsABadKeyWithoutChange) {
  for (std::string_view key : {"", "a b", "k=", "\xc3\xa9"}) {
    EXPECT_EQ(merged("k=1", key, "v", Baggage::KeyMatch::kExact, false), "k=1") << key;
  }
}

// The key may be a view into the baggage itself (from member()).
TEST(Baggage, MergeWithItsOwnMemberKeyIsSafe) {
  Parsed p = parse("first-key-longer-than-sso=1;p,second=2,first-key-longer-than-sso=3,third=3");
  ASSERT_TRUE(p.baggage.merge(p.baggage.member(2).key, "x"));
  EXPECT_EQ(p.baggage.toString(), "second=2,first-key-longer-than-sso=x,third=3");
  ASSERT_TRUE(p.baggage.merge(p.baggage.member(1).key, "y", Baggage::KeyMatch::kIgnoreCase));
  EXPECT_EQ(p.baggage.toString(), "second=2,first-key-longer-than-sso=y,third=3");
}

TEST(Baggage, ContainsMatchesWholeKeysAsAsked) {
  Baggage b;
  b.parse("userId=1,k1=2");
  EXPECT_TRUE(b.contains("userId"));
  EXPECT_FALSE(b.contains("userid"));
  EXPECT_TRUE(b.contains("userid", Baggage::KeyMatch::kIgnoreCase));
  EXPECT_TRUE(b.contains("K1", Baggage::KeyMatch::kIgnoreCase));
  EXPECT_FALSE(b.contains("k", Baggage::KeyMatch::kIgnoreCase));
  EXPECT_FALSE(Baggage{}.contains("k"));
}

// merge against a model of an ordered list: the order of the others never changes, value()
// always answers what the model says, and a merge changes the list exactly when the model's
// value for the key differs.
TEST(Baggage, RandomMergesMatchAModel) {
  std::mt19937 rng(11);
  const std::string_view keys[] = {"a", "b", "c", "d"};
  const std::string_view values[] = {"", "x", "a b", "100%", "\xc3\xa9", ",;=\"\\", "%41", "A"};
  for (int run = 0; run < 50; ++run) {
    Baggage b;
    std::vector<std::pair<std::string, std::string>> model;  // key, decoded value, in order
    for (int iter = 0; iter < 40; ++iter) {
      const std::string key(keys[rng() % std::size(keys)]);
      const std::string value(values[rng() % std::size(values)]);
      const auto it = std::find_if(model.begin(), model.end(),
                                   [&](const auto& m) { return m.first == key; });
      const bool want_change = it == model.end() || it->second != value;
      if (it == model.end()) {
        model.emplace_back(key, value);
      } else {
        it->second = value;
      }
      ASSERT_EQ(b.merge(key, value), want_change) << key << "=" << value;
      ASSERT_EQ(b.size(), model.size());
      for (size_t i = 0; i < model.size(); ++i) {
        ASSERT_EQ(b.member(i).key, model[i].first);
        ASSERT_EQ(b.value(model[i].first), model[i].second);
      }
    }
  }
}

TEST(Baggage, SerializeAppendsAndMatchesSerializedLength) {
  for (std::string_view in : {"", "a=1", "a=1,b=2;p", " a = 1 ,\tb=\t2 "}) {
    const Parsed p = parse(in);
    std::string out = "prefix:";
    p.baggage.serialize(out);
    EXPECT_EQ(out, "prefix:" + p.baggage.toString());
    EXPECT_EQ(p.baggage.serializedLength(), p.baggage.toString().size()) << in;
  }
}

// --- limits -------------------------------------------------------------------------------

TEST(Baggage, KeepsExactly64Members) {
  const Parsed p = parse(smallMembers(64));
  EXPECT_EQ(p.report.kept, 64u);
  EXPECT_EQ(p.report.dropped(), 0u);
}

TEST(Baggage, DropsThe65thMemberForTheMemberLimit) {
  const Parsed p = parse(smallMembers(65));
  EXPECT_EQ(p.report.kept, 64u);
  EXPECT_EQ(p.report.dropped_member_limit, 1u);
  EXPECT_EQ(p.report.dropped_byte_limit, 0u);
  EXPECT_EQ(p.baggage.toString(), smallMembers(64));
}

TEST(Baggage, KeepsExactly8192Bytes) {
  const std::string in = listOfLength(5, 8192);
  ASSERT_EQ(in.size(), 8192u);
  const Parsed p = parse(in);
  EXPECT_EQ(p.report.kept, 5u);
  EXPECT_EQ(p.report.dropped(), 0u);
  EXPECT_EQ(p.baggage.toString(), in);
}

TEST(Baggage, DropsWholeLastMemberOverByteLimit) {
  const std::string in = listOfLength(5, 8193);
  const Parsed p = parse(in);
  EXPECT_EQ(p.report.kept, 4u);
  EXPECT_EQ(p.report.dropped_byte_limit, 1u);
  EXPECT_EQ(p.report.dropped_member_limit, 0u);
  EXPECT_EQ(p.baggage.toString(), in.substr(0, 4 * 101 - 1));
}

TEST(Baggage, KeepsExactlyBothLimitsAtOnce) {
  const std::string in = listOfLength(64, 8192);
  const Parsed p = parse(in);
  EXPECT_EQ(p.report.kept, 64u);
  EXPECT_EQ(p.report.dropped(), 0u);
  EXPECT_EQ(p.baggage.serializedLength(), 8192u);
}

TEST(Baggage, OwsAndEmptyMembersDoNotCountTowardTheByteLimit) {
  const std::string in = " , " + listOfLength(3, 8192) + " ,,\t";
  const Parsed p = parse(in);
  EXPECT_EQ(p.report.kept, 3u);
  EXPECT_EQ(p.report.dropped(), 0u);
}

TEST(Baggage, InvalidMembersDoNotCountTowardTheMemberLimit) {
  std::string in;
  for (int i = 0; i < 64; ++i) in += "k" + std::to_string(i) + "=v,bad" + std::to_string(i) + ",";
  const Parsed p = parse(in);
  EXPECT_EQ(p.report.kept, 64u);
  EXPECT_EQ(p.report.dropped_invalid, 64u);
  EXPECT_EQ(p.report.dropped_member_limit, 0u);
}

TEST(Baggage, BigFirstMemberPushesEverythingAfterItOut) {
  const std::string in = sizedMember(0, 8193) + ",a=1,b=2,c=3";
  const Parsed p = parse(in);
  EXPECT_TRUE(p.baggage.empty());
  EXPECT_EQ(p.report.kept, 0u);
  EXPECT_EQ(p.report.dropped_byte_limit, 4u);
}

TEST(Baggage, KeepsTheLongestPrefixEvenWhenLaterMembersWouldFit) {
  const std::string in = "a=1," + sizedMember(1, 8190) + ",b=2";
  const Parsed p = parse(in);
  EXPECT_EQ(p.baggage.toString(), "a=1");
  EXPECT_EQ(p.report.dropped_byte_limit, 2u);
}

TEST(Baggage, CountsDropsPastTheMemberLimitAsMemberLimit) {
  // Member 10 overflows the bytes; members 10..64 go for bytes, 65..70 were past 64 anyway.
  std::string in = listOfLength(10, 8193);
  for (int i = 10; i < 70; ++i) in += ",x" + std::to_string(i) + "=1";
  const Parsed p = parse(in);
  EXPECT_EQ(p.report.kept, 9u);
  EXPECT_EQ(p.report.dropped_byte_limit, 55u);
  EXPECT_EQ(p.report.dropped_member_limit, 6u);
}

TEST(Baggage, HonoursCustomHigherLimits) {
  const BaggageLimits limits{.max_members = 100, .max_bytes = 16384};
  EXPECT_EQ(parse(smallMembers(100), limits).report.kept, 100u);
  const Parsed over = parse(smallMembers(101), limits);
  EXPECT_EQ(over.report.kept, 100u);
  EXPECT_EQ(over.report.dropped_member_limit, 1u);
  EXPECT_EQ(parse(listOfLength(10, 16384), limits).report.dropped(), 0u);
  const Parsed long_one = parse(listOfLength(10, 16385), limits);
  EXPECT_EQ(long_one.report.kept, 9u);
  EXPECT_EQ(long_one.report.dropped_byte_limit, 1u);
}

TEST(Baggage, TreatsLimitsBelowTheFloorAsTheFloor) {
  const BaggageLimits tiny{.max_members = 1, .max_bytes = 10};
  EXPECT_EQ(parse(smallMembers(64), tiny).report.dropped(), 0u);
  EXPECT_EQ(parse(listOfLength(3, 8192), tiny).report.dropped(), 0u);
  EXPECT_EQ(parse(smallMembers(65), tiny).report.dropped_member_limit, 1u);
  EXPECT_EQ(parse(listOfLength(3, 8193), tiny).report.dropped_byte_limit, 1u);
  const BaggageLimits zero{.max_members = 0, .max_bytes = 0};
  EXPECT_EQ(parse(smallMembers(64), zero).report.kept, 64u);
}

TEST(Baggage, EnforceDropsWholeMembersFromTheEnd) {
  Baggage b;
  b.parse(smallMembers(64));
  ASSERT_TRUE(b.set("extra", "1"));
  ASSERT_TRUE(b.set("big", std::string(9000, 'x')));
  const BaggageReport r = b.enforce({});
  EXPECT_EQ(r.kept, 64u);
  EXPECT_EQ(r.dropped_member_limit, 2u);
  EXPECT_EQ(b.size(), 64u);
  EXPECT_FALSE(b.value("extra").has_value());

  Baggage c;
  c.parse(listOfLength(3, 8000));
  ASSERT_TRUE(c.set("k", std::string(200, 'x')));
  const BaggageReport rc = c.enforce({.max_members = 1, .max_bytes = 1});  // floor applies
  EXPECT_EQ(rc.kept, 3u);
  EXPECT_EQ(rc.dropped_byte_limit, 1u);
  EXPECT_EQ(c.toString(), listOfLength(3, 8000));
}

TEST(Baggage, EnforceWithinLimitsChangesNothing) {
  Baggage b;
  b.parse("a=1,b=2");
  const BaggageReport r = b.enforce({});
  EXPECT_EQ(r.kept, 2u);
  EXPECT_EQ(r.dropped(), 0u);
  EXPECT_EQ(b.toString(), "a=1,b=2");
}

TEST(Baggage, ParsesHugeInputsWithinLimits) {
  std::string in;
  for (int i = 0; i < 20000; ++i) in += "k=v,,bad, ";
  const Parsed p = parse(in);
  EXPECT_EQ(p.report.kept, 64u);
  EXPECT_EQ(p.report.dropped_member_limit, 20000u - 64u);
  EXPECT_EQ(p.report.dropped_invalid, 20000u);
}

// --- round trips --------------------------------------------------------------------------

TEST(Baggage, ReparsingTheOutputGivesTheSameBaggage) {
  const std::string cases[] = {
      "a=1", " a = 1 ; p ; q = 2 ,b=%41,, c=", "k=1,k=2", "x=%zz%,y=%C3", listOfLength(64, 8192),
  };
  for (const std::string& in : cases) {
    const Parsed first = parse(in);
    const Parsed second = parse(first.baggage.toString());
    EXPECT_EQ(members(second.baggage), members(first.baggage)) << in;
    EXPECT_EQ(second.report.dropped(), 0u) << in;
  }
}

// Random mixes of valid and hostile fragments: the invariants hold for every one.
TEST(Baggage, RandomInputsKeepTheInvariants) {
  std::mt19937 rng(20240601);
  const std::string_view pieces[] = {"k", "key", "a.b-c", "=", "==", "v", "%41", "%", "%C3",
                                     "%FF", "%E2%82%AC", ";", ";p", ";p=1", " ", "\t", ",",
                                     ",,", "\"", "\\", "\x01", "\x7f", "\xc3\xa9", "!", "~"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string in;
    const size_t n = rng() % 40;
    for (size_t i = 0; i < n; ++i) {
      if (rng() % 16 == 0) {
        in.push_back(static_cast<char>(rng() % 256));
      } else {
        in += pieces[rng() % std::size(pieces)];
      }
    }
    const BaggageLimits limits{.max_members = 64 + rng() % 3, .max_bytes = 8192};
    const Parsed p = parse(in, limits);
    ASSERT_EQ(p.report.kept, p.baggage.size()) << in;
    ASSERT_LE(p.baggage.size(), limits.max_members) << in;
    const std::string out = p.baggage.toString();
    ASSERT_EQ(p.baggage.serializedLength(), out.size()) << in;
    for (size_t i = 0; i < p.baggage.size(); ++i) {
      ASSERT_TRUE(Baggage::isValidKey(p.baggage.member(i).key)) << in;
      ASSERT_TRUE(isValidUtf8(*p.baggage.value(p.baggage.member(i).key))) << in;
    }
    const Parsed again = parse(out, limits);
    ASSERT_EQ(again.baggage.toString(), out) << in;
    ASSERT_EQ(again.report.dropped(), 0u) << in;
  }
}

// set/erase against a simple model: value() always answers what the model says.
TEST(Baggage, RandomEditsMatchAModel) {
  std::mt19937 rng(7);
  const std::string_view keys[] = {"a", "b", "c", "d"};
  const std::string_view values[] = {"", "x", "a b", "100%", "\xc3\xa9", ",;=\"\\", "%41"};
  Baggage b;
  std::map<std::string, std::string> model;
  for (int iter = 0; iter < 2000; ++iter) {
    const std::string key(keys[rng() % std::size(keys)]);
    if (rng() % 4 == 0) {
      EXPECT_EQ(b.erase(key), model.erase(key) > 0);
    } else {
      const std::string value(values[rng() % std::size(values)]);
      ASSERT_TRUE(b.set(key, value, rng() % 2 ? "p" : ""));
      model[key] = value;
    }
    ASSERT_EQ(b.size(), model.size());
    for (std::string_view k : keys) {
      const auto it = model.find(std::string(k));
      ASSERT_EQ(b.value(k), it == model.end() ? std::nullopt : std::optional(it->second));
    }
    Baggage copy;
    copy.parse(b.toString());
    ASSERT_EQ(members(copy), members(b));
  }
}

}  // namespace
}  // namespace tracecar::propagation
