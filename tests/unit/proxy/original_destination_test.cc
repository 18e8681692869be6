#include "proxy/original_destination.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace tracecar::proxy {
namespace {

sockaddr_storage address(const std::string& ip, uint16_t port) {
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr), 1) << ip;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
  }
  return storage;
}

TEST(OwnListeners, SpecificAddressMatchesOnlyItselfAndItsPort) {
  OwnListeners own;
  ASSERT_TRUE(own.add("127.0.0.1", 15001).ok());
  EXPECT_TRUE(own.contains(address("127.0.0.1", 15001)));
  EXPECT_FALSE(own.contains(address("127.0.0.1", 15002)));
  EXPECT_FALSE(own.contains(address("127.0.0.2", 15001)));
  EXPECT_FALSE(own.contains(address("::1", 15001)));
  // The same address seen through a dual-stack socket.
  EXPECT_TRUE(own.contains(address("::ffff:127.0.0.1", 15001)));
}

// Connecting to the unspecified address reaches the loopback one.
TEST(OwnListeners, TheUnspecifiedAddressReachesALoopbackListener) {
  OwnListeners own;
  ASSERT_TRUE(own.add("127.0.0.1", 15001).ok());
  ASSERT_TRUE(own.add("::1", 15001).ok());
  ASSERT_TRUE(own.add("192.0.2.2", 15006).ok());
  EXPECT_TRUE(own.contains(address("0.0.0.0", 15001)));
  EXPECT_TRUE(own.contains(address("::", 15001)));
  EXPECT_TRUE(own.contains(address("::ffff:0.0.0.0", 15001)));
  EXPECT_FALSE(own.contains(address("0.0.0.0", 15006)));  // not to another address
  EXPECT_FALSE(own.contains(address("0.0.0.0", 15002)));
}

TEST(OwnListeners, Ipv4WildcardAnswersOnLoopbackAndLocalIpv4Addresses) {
  OwnListeners own;
  ASSERT_TRUE(own.add("0.0.0.0", 15006).ok());
  own.addLocalAddress(address("192.0.2.2", 0));
  EXPECT_TRUE(own.contains(address("192.0.2.2", 15006)));
  EXPECT_TRUE(own.contains(address("127.0.0.1", 15006)));
  EXPECT_TRUE(own.contains(address("127.9.9.9", 15006)));
  EXPECT_TRUE(own.contains(address("0.0.0.0", 15006)));
  EXPECT_FALSE(own.contains(address("192.0.2.1", 15006)));  // another pod
  EXPECT_FALSE(own.contains(address("192.0.2.2", 8080)));
  EXPECT_FALSE(own.contains(address("::1", 15006)));  // 0.0.0.0 takes no IPv6
}

TEST(OwnListeners, Ipv6WildcardIsDualStack) {
  OwnListeners own;
  ASSERT_TRUE(own.add("::", 15006).ok());
  own.addLocalAddress(address("2001:db8::2", 0));
  own.addLocalAddress(address("192.0.2.2", 0));
  EXPECT_TRUE(own.contains(address("::1", 15006)));
  EXPECT_TRUE(own.contains(address("2001:db8::2", 15006)));
  EXPECT_TRUE(own.contains(address("192.0.2.2", 15006)));
  EXPECT_TRUE(own.contains(address("127.0.0.1", 15006)));
  EXPECT_FALSE(own.contains(address("2001:db8::1", 15006)));
}

TEST(OwnListeners, MappedZeroAddressIsNoWildcard) {
  OwnListeners own;
  ASSERT_TRUE(own.add("::ffff:0.0.0.0", 15006).ok());
  own.addLocalAddress(address("192.0.2.2", 0));
  EXPECT_FALSE(own.contains(address("192.0.2.2", 15006)));
}

TEST(OwnListeners, LoadsTheLocalAddressesOfThisNamespace) {
  OwnListeners own;
  ASSERT_TRUE(own.add("::", 15006).ok());
  ASSERT_TRUE(own.loadLocalAddresses().ok());
  EXPECT_TRUE(own.contains(address("127.0.0.1", 15006)));
}

TEST(OwnListeners, RejectsANonAddress) {
  OwnListeners own;
  const absl::Status status = own.add("localhost", 15006);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "own listener \"localhost\": not an IP address");
}

TEST(OriginalDestination, DirectConnectionWasNotRedirected) {
  const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_storage bound = address("127.0.0.1", 0);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&bound), sizeof(sockaddr_in)), 0);
  ASSERT_EQ(::listen(server, 1), 0);
  socklen_t length = sizeof bound;
  ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&bound), &length), 0);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&bound), sizeof(sockaddr_in)), 0);
  const int accepted = ::accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  const auto original = originalDestination(accepted);
  ASSERT_TRUE(original.ok()) << original.status();
  EXPECT_FALSE(original->has_value());
  ::close(accepted);
  ::close(client);
  ::close(server);
}

TEST(OriginalDestination, NotASocketIsAnError) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const auto original = originalDestination(fds[0]);
  EXPECT_FALSE(original.ok());
  EXPECT_NE(std::string(original.status().message()).find("getsockname"), std::string::npos);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_FALSE(originalDestination(-1).ok());
}

}  // namespace
}  // namespace tracecar::proxy
