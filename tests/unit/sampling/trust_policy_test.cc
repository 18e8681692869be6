#include "sampling/trust_policy.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace tracecar::sampling {
namespace {

TrustPolicy policy(std::string_view text) {
  absl::StatusOr<TrustPolicy> p = TrustPolicy::parse(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status();
  return p.ok() ? *std::move(p) : TrustPolicy::never();
}

TEST(TrustPolicy, AlwaysAndNever) {
  EXPECT_TRUE(TrustPolicy().trusts("203.0.113.9"));
  EXPECT_TRUE(TrustPolicy().trusts(""));  // always trusts even an unknown peer
  EXPECT_TRUE(policy(" ALWAYS ").trustsEveryone());
  const TrustPolicy never = policy("never");
  EXPECT_TRUE(never.trustsNoOne());
  EXPECT_FALSE(never.trusts("127.0.0.1"));
  EXPECT_EQ(never.toString(), "never");
  EXPECT_EQ(TrustPolicy().toString(), "always");
}

TEST(TrustPolicy, Ipv4Boundaries) {
  const TrustPolicy p = policy("10.0.0.0/8, 192.168.1.128/25");
  EXPECT_TRUE(p.trusts("10.0.0.0"));
  EXPECT_TRUE(p.trusts("10.255.255.255"));
  EXPECT_FALSE(p.trusts("11.0.0.0"));
  EXPECT_FALSE(p.trusts("9.255.255.255"));
  EXPECT_TRUE(p.trusts("192.168.1.128"));
  EXPECT_TRUE(p.trusts("192.168.1.255"));
  EXPECT_FALSE(p.trusts("192.168.1.127"));
  EXPECT_FALSE(p.trusts("192.168.2.128"));
}

TEST(TrustPolicy, SingleAddressesAndZeroPrefix) {
  const TrustPolicy p = policy("127.0.0.1, ::1");
  EXPECT_TRUE(p.trusts("127.0.0.1"));
  EXPECT_FALSE(p.trusts("127.0.0.2"));
  EXPECT_TRUE(p.trusts("::1"));
  EXPECT_FALSE(p.trusts("::2"));
  EXPECT_EQ(p.toString(), "127.0.0.1/32, ::1/128");
  EXPECT_TRUE(policy("0.0.0.0/0").trusts("8.8.8.8"));
  EXPECT_FALSE(policy("0.0.0.0/0").trusts("2001:db8::1"));  // only IPv4 (and mapped) peers
}

TEST(TrustPolicy, Ipv6Prefixes) {
  const TrustPolicy p = policy("2001:db8::/32, fc00::/7, fe80::/10");
  EXPECT_TRUE(p.trusts("2001:db8::1"));
  EXPECT_TRUE(p.trusts("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(p.trusts("2001:db9::"));
  EXPECT_FALSE(p.trusts("2001:db7:ffff::"));
  EXPECT_TRUE(p.trusts("fd12:3456::1"));   // fc00::/7 covers fc and fd
  EXPECT_FALSE(p.trusts("fe00::1"));
  EXPECT_TRUE(p.trusts("fe80::1%eth0"));   // zone ignored
  EXPECT_TRUE(p.trusts("[2001:db8::5]"));  // brackets tolerated
  EXPECT_FALSE(p.trusts("10.0.0.1"));
  EXPECT_EQ(p.toString(), "2001:db8::/32, fc00::/7, fe80::/10");
}

TEST(TrustPolicy, MappedAddressesMatchIpv4Networks) {
  const TrustPolicy p = policy("10.0.0.0/8");
  EXPECT_TRUE(p.trusts("::ffff:10.1.2.3"));
  EXPECT_FALSE(p.trusts("::ffff:11.1.2.3"));
  EXPECT_FALSE(p.trusts("::10.1.2.3"));  // IPv4-compatible, not mapped
  EXPECT_TRUE(policy("::ffff:0:0/96").trusts("1.2.3.4"));
}

TEST(TrustPolicy, UnparsableOrEmptyPeersAreNotTrusted) {
  const TrustPolicy p = policy("0.0.0.0/0, ::/0");
  EXPECT_TRUE(p.trusts("1.2.3.4"));
  EXPECT_TRUE(p.trusts("2001:db8::1"));
  for (std::string_view bad : std::initializer_list<std::string_view>{"", "localhost", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ",
                               "::g", std::string_view("1.2.3.4\0", 8), "[::1"}) {
    EXPECT_FALSE(p.trusts(bad)) << bad;
  }
  EXPECT_FALSE(p.trusts(std::string(200, '1')));
}

struct BadPolicy {
  std::string text;
  std::string message;
};

class TrustPolicyRejects : public ::testing::TestWithParam<BadPolicy> {};

TEST_P(TrustPolicyRejects, WithAClearMessage) {
  const absl::StatusOr<TrustPolicy> p = TrustPolicy::parse(GetParam().text);
  ASSERT_FALSE(p.ok()) << GetParam().text;
  EXPECT_NE(std::string(p.status().message()).find(GetParam().message), std::string::npos)
      << p.status();
}

INSTANTIATE_TEST_SUITE_P(
    Errors, TrustPolicyRejects,
    ::testing::Values(
        BadPolicy{"", "empty; expected always, never or a list of CIDRs"},
        BadPolicy{"sometimes", "element 1 (`sometimes`): `sometimes` is not an IPv4 or IPv6"},
        BadPolicy{"10.0.0.0/33", "prefix length `33` must be a number from 0 to 32"},
        BadPolicy{"2001:db8::/129", "from 0 to 128"},
        BadPolicy{"10.0.0.0/", "prefix length ``"}, BadPolicy{"10.0.0.0/x", "prefix length `x`"},
        BadPolicy{"10.0.0.0/-1", "prefix length `-1`"},
        BadPolicy{"10.1.2.3/8", "`10.1.2.3/8` has bits set below its /8 prefix"},
        BadPolicy{"2001:db8::1/32", "bits set below its /32"},
        BadPolicy{"300.1.1.1", "not an IPv4 or IPv6"}, BadPolicy{"/8", "`` is not an IPv4"},
        BadPolicy{"10.0.0.0/8,,::1", "element 2 (``): empty element"},
        BadPolicy{"10.0.0.0/8, never", "element 2 (`never`)"},
        BadPolicy{"fe80::1%eth0", "not an IPv4 or IPv6"}));

}  // namespace
}  // namespace tracecar::sampling
