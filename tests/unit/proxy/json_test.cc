#include "proxy/json.h"

#include <gtest/gtest.h>

#include <string>

namespace tracecar::proxy::json {
namespace {

std::string roundTrip(std::string_view text) {
  auto v = parse(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status();
  return v.ok() ? serialize(*v) : "";
}

std::string errorOf(std::string_view text) {
  auto v = parse(text);
  EXPECT_FALSE(v.ok()) << text;
  return v.ok() ? "" : std::string(v.status().message());
}

TEST(JsonTest, RoundTripsKeepingMemberOrderAndNumberText) {
  EXPECT_EQ(roundTrip(R"( {"b":1, "a":[true,false,null], "c":{"x":"y"}} )"),
            R"({"b":1,"a":[true,false,null],"c":{"x":"y"}})");
  EXPECT_EQ(roundTrip("-0.5e+10"), "-0.5e+10");
  EXPECT_EQ(roundTrip("123456789012345678901234567890"), "123456789012345678901234567890");
  EXPECT_EQ(roundTrip("[]"), "[]");
  EXPECT_EQ(roundTrip("{}"), "{}");
}

TEST(JsonTest, DecodesEscapesAndSurrogatePairs) {
  auto v = parse(R"("a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00")");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->text(), "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(serialize(*v), "\"a\\\"\\\\/\\b\\f\\n\\r\\t\xc3\xa9\xf0\x9f\x98\x80\"");
}

TEST(JsonTest, WritesControlCharactersAsEscapes) {
  EXPECT_EQ(serialize(Value::string(std::string("\x01x\x1f", 3))), R"("\u0001x\u001f")");
}

TEST(JsonTest, RefusesWhatRfc8259Refuses) {
  EXPECT_NE(errorOf("[1,]").find("expected a value"), std::string::npos);
  EXPECT_NE(errorOf("{\"a\":1,}").find("member name"), std::string::npos);
  EXPECT_NE(errorOf("01").find("leading zero"), std::string::npos);
  EXPECT_NE(errorOf("1.").find("digit"), std::string::npos);
  EXPECT_NE(errorOf("NaN").find("expected a value"), std::string::npos);
  EXPECT_NE(errorOf("\"a\nb\"").find("control character"), std::string::npos);
  EXPECT_NE(errorOf(R"("\x")").find("invalid escape"), std::string::npos);
  EXPECT_NE(errorOf(R"("\ud800")").find("unpaired high surrogate"), std::string::npos);
  EXPECT_NE(errorOf(R"("\udc00")").find("unpaired low surrogate"), std::string::npos);
  EXPECT_NE(errorOf("\"\xc0\xaf\"").find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(errorOf("\"\xed\xa0\x80\"").find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(errorOf("\"\xe2\x82\"").find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(errorOf("// x\n1").find("expected a value"), std::string::npos);
  EXPECT_NE(errorOf("1 2").find("after the value"), std::string::npos);
  EXPECT_NE(errorOf("").find("end of input"), std::string::npos);
  EXPECT_NE(errorOf("tru").find("invalid literal"), std::string::npos);
}

TEST(JsonTest, RefusesDuplicateKeys) {
  EXPECT_EQ(errorOf("{\"a\":1,\n \"a\":2}"), "line 2, column 2: duplicate member name \"a\"");
}

TEST(JsonTest, ErrorsNameLineAndColumn) {
  EXPECT_EQ(errorOf("{\n  \"a\": 1\n  \"b\": 2}"), "line 3, column 3: expected ',' or '}'");
}

TEST(JsonTest, DepthLimitAtAndPastTheLimit) {
  const ParseLimits limits{.max_depth = 3};
  EXPECT_TRUE(parse("[[[1]]]", limits).ok());
  EXPECT_NE(std::string(parse("[[[[1]]]]", limits).status().message()).find("nested too deeply"),
            std::string::npos);
  // The default limit keeps a hostile document from exhausting the stack.
  EXPECT_FALSE(parse(std::string(100000, '[')).ok());
}

TEST(JsonTest, BuildsAndEditsValues) {
  Value v;
  v.set("name", Value::string("x"));
  v.set("n", Value::number(-42));
  v.set("list", Value::array()).push(Value(true));
  v.set("name", Value::string("y"));
  EXPECT_EQ(serialize(v), R"({"name":"y","n":-42,"list":[true]})");
  EXPECT_EQ(v.stringAt("name"), "y");
  EXPECT_EQ(v.stringAt("n"), "");
  EXPECT_EQ(v.find("n")->integer(), -42);
  EXPECT_EQ(Value::numberText("1.5").integer(), std::nullopt);
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(*parse(serialize(v)), v);
}

}  // namespace
}  // namespace tracecar::proxy::json
