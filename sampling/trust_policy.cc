#include "sampling/trust_policy.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <system_error>

#include "sampling/text.h"

namespace tracecar::sampling {

namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
// Longest textual IPv6 address with an embedded IPv4 part, plus room for a terminator.
constexpr size_t kMaxAddressText = INET6_ADDRSTRLEN + 1;

bool isV4Text(std::string_view text) noexcept { return text.find(':') == std::string_view::npos; }

bool prefixMatches(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& network,
                   unsigned prefix_length) noexcept {
  const unsigned whole = prefix_length / 8;
  if (std::memcmp(a.data(), network.data(), whole) != 0) return false;
  const unsigned rest = prefix_length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (network[whole] & mask);
}

bool hostBitsZero(const std::array<uint8_t, 16>& a, unsigned prefix_length) noexcept {
  for (unsigned bit = prefix_length; bit < 128; ++bit) {
    if ((a[bit / 8] >> (7 - bit % 8)) & 1) return false;
  }
  return true;
}

std::string formatAddress(const std::array<uint8_t, 16>& address, bool as_v4) {
  char text[INET6_ADDRSTRLEN] = {};
  if (as_v4) {
    inet_ntop(AF_INET, address.data() + 12, text, sizeof(text));
  } else {
    inet_ntop(AF_INET6, address.data(), text, sizeof(text));
  }
  return text;
}

absl::StatusOr<TrustPolicy::Network> parseNetwork(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  const bool v4 = isV4Text(address_text);
  TrustPolicy::Network network;
  if (address_text.find('%') != std::string_view::npos ||
      !TrustPolicy::parseAddress(address_text, network.address)) {
    return text::invalid(
        "`", address_text, "` is not an IPv4 or IPv6 address");
  }
  const unsigned max_length = v4 ? 32 : 128;
  unsigned length = max_length;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const char* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, length);
    if (digits.empty() || digits.size() > 3 || ec != std::errc() || ptr != end ||
        length > max_length) {
      return text::invalid("prefix length `", digits,
                                                     "` must be a number from 0 to ", max_length);
    }
  }
  const unsigned stored_length = v4 ? length + 96 : length;
  if (!hostBitsZero(network.address, stored_length)) {
    return text::invalid(
        "`", text, "` has bits set below its /", length, " prefix");
  }
  network.prefix_length = static_cast<uint8_t>(stored_length);
  return network;
}

}  // namespace

TrustPolicy TrustPolicy::never() {
  TrustPolicy policy;
  policy.mode_ = Mode::kNever;
  return policy;
}

bool TrustPolicy::parseAddress(std::string_view text, std::array<uint8_t, 16>& out) noexcept {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  const size_t zone = text.find('%');
  if (zone != std::string_view::npos) text = text.substr(0, zone);
  if (text.empty() || text.size() >= kMaxAddressText) return false;
  if (text.find('\0') != std::string_view::npos) return false;  // inet_pton would stop there
  char buffer[kMaxAddressText];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  if (isV4Text(text)) {
    std::memcpy(out.data(), kMappedPrefix.data(), kMappedPrefix.size());
    return inet_pton(AF_INET, buffer, out.data() + 12) == 1;
  }
  return inet_pton(AF_INET6, buffer, out.data()) == 1;
}

absl::StatusOr<TrustPolicy> TrustPolicy::parse(std::string_view text) {
  const std::string_view trimmed = text::trim(text);
  if (text::equalsLower(trimmed, "always")) return always();
  if (text::equalsLower(trimmed, "never")) return never();
  if (trimmed.empty()) {
    return absl::InvalidArgumentError(
        "trust_incoming_context: empty; expected always, never or a list of CIDRs");
  }
  TrustPolicy policy;
  policy.mode_ = Mode::kList;
  std::string_view rest = trimmed;
  size_t position = 0;
  while (true) {
    ++position;
    const size_t comma = rest.find(',');
    const std::string_view element = text::trim(rest.substr(0, comma));
    absl::StatusOr<Network> network =
        element.empty() ? absl::InvalidArgumentError("empty element") : parseNetwork(element);
    if (!network.ok()) {
      return text::invalid("trust_incoming_context: element ", position,
                                                     " (`", element, "`): ",
                                                     network.status().message());
    }
    policy.networks_.push_back(*network);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return policy;
}

bool TrustPolicy::trusts(std::string_view ip_address) const noexcept {
  switch (mode_) {
    case Mode::kAlways: return true;
    case Mode::kNever: return false;
    case Mode::kList: break;
  }
  std::array<uint8_t, 16> address{};
  if (!parseAddress(ip_address, address)) return false;
  for (const Network& network : networks_) {
    if (prefixMatches(address, network.address, network.prefix_length)) return true;
  }
  return false;
}

std::string TrustPolicy::toString() const {
  switch (mode_) {
    case Mode::kAlways: return "always";
    case Mode::kNever: return "never";
    case Mode::kList: break;
  }
  std::string out;
  for (const Network& network : networks_) {
    if (!out.empty()) out += ", ";
    const bool v4 = network.prefix_length >= 96 &&
                    std::memcmp(network.address.data(), kMappedPrefix.data(), 12) == 0;
    out += formatAddress(network.address, v4);
    out += text::concat("/", v4 ? network.prefix_length - 96 : network.prefix_length);
  }
  return out;
}

}  // namespace tracecar::sampling
