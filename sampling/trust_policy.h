#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tracecar::sampling {

// Whose incoming trace context is believed (`trust_incoming_context`). For a source that is not
// trusted the proxy restarts the trace and keeps the incoming context only as a span link, so
// an outside caller can neither force sampling with its sampled flag nor join our traces.
class TrustPolicy {
 public:
  // One network: an IPv6 prefix. IPv4 networks are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d,
  // prefix + 96), so a mapped peer address matches them.
  struct Network {
    std::array<uint8_t, 16> address{};
    uint8_t prefix_length = 0;  // 0..128
    friend bool operator==(const Network&, const Network&) = default;
  };

  // Trusts everyone (the default).
  TrustPolicy() = default;
  static TrustPolicy always() { return TrustPolicy(); }
  static TrustPolicy never();

  // "always", "never" (any case), or a comma-separated list of networks: IPv4 or IPv6 CIDRs
  // ("10.0.0.0/8, 2001:db8::/32") or single addresses (/32, /128). Host bits below the prefix
  // must be zero. Errors name the element by position and text.
  static absl::StatusOr<TrustPolicy> parse(std::string_view text);

  // Is the peer at ip_address (as a socket reports it: dotted IPv4, or IPv6 without brackets,
  // an optional %zone ignored) trusted? An empty or unparsable address is trusted only by
  // "always".
  bool trusts(std::string_view ip_address) const noexcept;

  bool trustsEveryone() const noexcept { return mode_ == Mode::kAlways; }
  bool trustsNoOne() const noexcept { return mode_ == Mode::kNever; }
  const std::vector<Network>& networks() const noexcept { return networks_; }
  std::string toString() const;  // "always", "never" or the normalised list

  // The 16-byte form of an address (IPv4 as IPv4-mapped). False when it is not one.
  static bool parseAddress(std::string_view text, std::array<uint8_t, 16>& out) noexcept;

 private:
  enum class Mode : uint8_t { kAlways, kNever, kList };
  Mode mode_ = Mode::kAlways;
  std::vector<Network> networks_;
};

}  // namespace tracecar::sampling
