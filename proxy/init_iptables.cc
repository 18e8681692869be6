#include "proxy/init_iptables.h"

#include <absl/status/statusor.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "proxy/iptables_rules.h"

namespace tracecar::proxy {
namespace {

// iptables may wait for the xtables lock (legacy backend); never wait for it forever.
constexpr std::chrono::seconds kProgramTimeout{30};
constexpr int kCapNetAdmin = 12;  // linux/capability.h

struct ProgramResult {
  int exit_code = 0;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// A file descriptor, closed when it goes out of scope or by reset().
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const noexcept { return fd_; }
  void adopt(int fd) noexcept {
    reset();
    fd_ = fd;
  }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

absl::Status openPipe(Pipe& pipe) {
  int fds[2];
  // Close-on-exec: only the ends dup2'ed onto the child's 0, 1 and 2 reach it.
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(std::string("pipe: ") + std::strerror(errno));
  }
  pipe.read.adopt(fds[0]);
  pipe.write.adopt(fds[1]);
  return absl::OkStatus();
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Starts argv (looked up in PATH) with its standard streams on the given pipe ends; the pid, or
// the posix_spawnp error number.
int spawn(const std::vector<std::string>& argv, int in, int out, int err, pid_t& pid) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err, STDERR_FILENO);
  // main() ignores SIGPIPE; the child gets the default back and an empty signal mask.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attributes, &signals);
  sigaddset(&signals, SIGPIPE);
  posix_spawnattr_setsigdefault(&attributes, &signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int error = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  return error;
}

// Runs argv (looked up in PATH) with input on its standard input and collects its output; kills
// it after kProgramTimeout.
absl::StatusOr<ProgramResult> runProgram(const std::vector<std::string>& argv,
                                         const std::string& input) {
  Pipe in;
  Pipe out;
  Pipe err;
  for (Pipe* pipe : {&in, &out, &err}) {
    if (absl::Status status = openPipe(*pipe); !status.ok()) return status;
  }
  pid_t pid = 0;
  const int spawned = spawn(argv, in.read.get(), out.write.get(), err.write.get(), pid);
  if (spawned == ENOENT) {
    return absl::NotFoundError(argv[0] + ": not found in PATH; install iptables (1.8 or newer, " +
                               "nf_tables or legacy backend)");
  }
  if (spawned != 0) {
    return absl::InternalError("starting " + argv[0] + ": " + std::strerror(spawned));
  }
  // Our copies of the child's ends: without closing them we would never see end of file.
  in.read.reset();
  out.write.reset();
  err.write.reset();
  ::fcntl(in.write.get(), F_SETFL, O_NONBLOCK);
  if (input.empty()) in.write.reset();

  ProgramResult result;
  size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + kProgramTimeout;
  bool timed_out = false;
  while (in.write.get() >= 0 || out.read.get() >= 0 || err.read.get() >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    // poll() skips the negative (closed) descriptors.
    pollfd fds[3] = {
        {in.write.get(), POLLOUT, 0}, {out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 3, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    if (fds[0].fd >= 0 && fds[0].revents != 0) {
      const ssize_t n = ::write(fds[0].fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      // The program may exit before reading everything (EPIPE): its exit code tells why.
      if (written == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        in.write.reset();
      }
    }
    std::pair<UniqueFd*, std::string*> readers[] = {{&out.read, &result.out},
                                                    {&err.read, &result.err}};
    for (size_t i = 0; i < 2; ++i) {
      if (fds[i + 1].fd < 0 || fds[i + 1].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i + 1].fd, buffer, sizeof buffer);
      if (n > 0) {
        readers[i].second->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        readers[i].first->reset();
      }
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(argv[0] + " did not finish within " +
                                       std::to_string(kProgramTimeout.count()) + " s; killed");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string joined(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) text += (text.empty() ? "" : " ") + arg;
  return text;
}

// An error naming the command, its exit code and what it printed, with a hint when it is
// about privileges.
absl::Status programFailed(const std::vector<std::string>& argv, const ProgramResult& result) {
  std::string message = joined(argv) + " failed (exit " + std::to_string(result.exit_code) + ")";
  const std::string said = trimmed(result.err.empty() ? result.out : result.err);
  if (!said.empty()) message += ": " + said;
  if (said.find("Permission denied") != std::string::npos ||
      said.find("must be root") != std::string::npos) {
    message +=
        "\n  init-iptables needs root, or CAP_NET_ADMIN and CAP_NET_RAW, in the pod's "
        "network namespace";
  }
  return absl::FailedPreconditionError(message);
}

struct FamilyTools {
  std::string save;
  std::string restore;
};

FamilyTools toolsFor(IpFamily family) {
  if (family == IpFamily::kIpv4) return {"iptables-save", "iptables-restore"};
  return {"ip6tables-save", "ip6tables-restore"};
}

absl::StatusOr<std::string> saveNat(IpFamily family) {
  const std::vector<std::string> argv = {toolsFor(family).save, "-t", "nat"};
  absl::StatusOr<ProgramResult> result = runProgram(argv, "");
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) return programFailed(argv, *result);
  return std::move(result->out);
}

absl::Status restoreNat(IpFamily family, const std::string& script) {
  // --noflush: leave every rule that is not ours alone; the script flushes only our chains.
  const std::vector<std::string> argv = {toolsFor(family).restore, "--noflush", "--wait=10"};
  absl::StatusOr<ProgramResult> result = runProgram(argv, script);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) return programFailed(argv, *result);
  return absl::OkStatus();
}

// Whether the effective capabilities include CAP_NET_ADMIN; true when they cannot be read (then
// iptables itself reports the problem).
bool hasNetAdmin() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("CapEff:")) continue;
    const unsigned long long caps = std::strtoull(line.c_str() + 7, nullptr, 16);
    return (caps >> kCapNetAdmin) & 1;
  }
  return true;
}

// An IPv6 address other than loopback and link-local on any interface: the pod uses IPv6.
bool hasGlobalIpv6() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool found = false;
  for (const ifaddrs* entry = list; entry != nullptr && !found; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET6) continue;
    const in6_addr& address = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr)->sin6_addr;
    found = !IN6_IS_ADDR_LOOPBACK(&address) && !IN6_IS_ADDR_LINKLOCAL(&address) &&
            !IN6_IS_ADDR_MULTICAST(&address) && !IN6_IS_ADDR_UNSPECIFIED(&address);
  }
  ::freeifaddrs(list);
  return found;
}

absl::StatusOr<InterceptionOptions> interceptionOptions(const InitIptablesFlags& flags) {
  InterceptionOptions options;
  options.inbound_port = flags.inbound_port;
  options.outbound_port = flags.outbound_port;
  options.admin_port = flags.admin_port;
  options.proxy_uid = flags.proxy_uid;
  options.proxy_gid = flags.proxy_gid;
  if (absl::Status status = parseInboundPorts(flags.inbound_ports, options); !status.ok()) {
    return status;
  }
  auto inbound = parsePortList("--exclude-inbound-ports", flags.exclude_inbound_ports);
  if (!inbound.ok()) return inbound.status();
  options.exclude_inbound_ports = *std::move(inbound);
  auto outbound = parsePortList("--exclude-outbound-ports", flags.exclude_outbound_ports);
  if (!outbound.ok()) return outbound.status();
  options.exclude_outbound_ports = *std::move(outbound);
  auto cidrs = parseCidrList("--exclude-outbound-cidrs", flags.exclude_outbound_cidrs);
  if (!cidrs.ok()) return cidrs.status();
  options.exclude_outbound_cidrs = *std::move(cidrs);
  if (absl::Status status = validateOptions(options); !status.ok()) return status;
  return options;
}

// Installs or removes the rules of one family; prints what it applies.
absl::Status applyFamily(const InterceptionOptions& options, IpFamily family,
                         const std::string& saved, bool cleanup, bool dry_run) {
  const std::string name(ipFamilyName(family));
  const std::string script = cleanup ? cleanupScript(saved) : installScript(options, family, saved);
  if (script.empty()) {
    std::printf("# %s: no tracecar rules to remove\n", name.c_str());
    return absl::OkStatus();
  }
  std::printf("# %s: %s --noflush\n%s", name.c_str(), toolsFor(family).restore.c_str(),
              script.c_str());
  if (dry_run) return absl::OkStatus();
  std::fflush(stdout);
  if (absl::Status status = restoreNat(family, script); !status.ok()) return status;
  std::printf("# %s: %s\n", name.c_str(), cleanup ? "removed" : "installed");
  return absl::OkStatus();
}

int fail(const absl::Status& status, int code) {
  std::fprintf(stderr, "tracecar init-iptables: %s\n", std::string(status.message()).c_str());
  return code;
}

}  // namespace

void addInitIptablesOptions(CLI::App& command, InitIptablesFlags& flags) {
  // The range check without its description, which CLI11 would print after the type name.
  const CLI::Validator port = CLI::Range(1, 65535).description("");
  command
      .add_option("--inbound-port", flags.inbound_port,
                  "Inbound listener port: redirected inbound TCP goes here")
      ->type_name("PORT")
      ->check(port)
      ->capture_default_str();
  command
      .add_option("--outbound-port", flags.outbound_port,
                  "Outbound listener port: the app's redirected outbound TCP goes here")
      ->type_name("PORT")
      ->check(port)
      ->capture_default_str();
  command
      .add_option("--admin-port", flags.admin_port,
                  "Admin listener port; like the two listener ports, never redirected")
      ->type_name("PORT")
      ->check(port)
      ->capture_default_str();
  command
      .add_option("--proxy-uid", flags.proxy_uid,
                  "User id tracecar runs as: its own connections are never redirected")
      ->type_name("UID")
      ->capture_default_str();
  command
      .add_option_function<uint32_t>(
          "--proxy-gid", [&flags](const uint32_t& gid) { flags.proxy_gid = gid; },
          "Group id whose connections are never redirected either (default: none)")
      ->type_name("GID");
  command
      .add_option("--inbound-ports", flags.inbound_ports,
                  "Inbound ports to redirect: \"*\" for all, or a list like 8080,9000-9010 "
                  "(\"\" redirects nothing inbound)")
      ->type_name("PORTS")
      ->capture_default_str();
  command
      .add_option("--exclude-inbound-ports", flags.exclude_inbound_ports,
                  "Inbound ports never redirected, e.g. 22,8443 (default: none)")
      ->type_name("PORTS");
  command
      .add_option("--exclude-outbound-ports", flags.exclude_outbound_ports,
                  "Outbound destination ports never redirected, e.g. 5432,6379 (default: "
                  "none)")
      ->type_name("PORTS");
  command
      .add_option("--exclude-outbound-cidrs", flags.exclude_outbound_cidrs,
                  "Outbound destinations never redirected, IPv4 and IPv6, e.g. "
                  "10.96.0.1/32,fd00::/8 (default: none)")
      ->type_name("CIDRS");
  command
      .add_option("--ipv6", flags.ipv6,
                  "ip6tables rules too: auto (when the namespace has a global IPv6 address, "
                  "then required, or ip6tables works), on, off")
      ->type_name("auto|on|off")
      ->capture_default_str();
  command.add_flag("--dry-run", flags.dry_run,
                   "Print the rules (iptables-restore input, per family) and change nothing; "
                   "with --cleanup, print what would be removed");
  command.add_flag("--cleanup", flags.cleanup,
                   "Remove the jumps and the TRACECAR_* chains this command adds, nothing else");
}

int runInitIptables(const InitIptablesFlags& flags) {
  absl::StatusOr<InterceptionOptions> options = interceptionOptions(flags);
  if (!options.ok()) return fail(options.status(), 2);
  absl::StatusOr<Ipv6Mode> ipv6 = parseIpv6Mode(flags.ipv6);
  if (!ipv6.ok()) return fail(ipv6.status(), 2);

  if (flags.dry_run && !flags.cleanup) {
    std::fputs(dryRunText(*options, *ipv6).c_str(), stdout);
    return 0;
  }
  if (!flags.dry_run && !hasNetAdmin()) {
    return fail(absl::PermissionDeniedError(
                    "changing iptables rules needs root, or CAP_NET_ADMIN and CAP_NET_RAW, in "
                    "the pod's network namespace; this process has no CAP_NET_ADMIN"),
                1);
  }

  absl::StatusOr<std::string> saved = saveNat(IpFamily::kIpv4);
  if (!saved.ok()) return fail(saved.status(), 1);
  if (absl::Status status =
          applyFamily(*options, IpFamily::kIpv4, *saved, flags.cleanup, flags.dry_run);
      !status.ok()) {
    return fail(status, 1);
  }

  if (*ipv6 == Ipv6Mode::kOff) return 0;
  // auto: IPv6 in use makes the IPv6 rules required; otherwise they are installed when
  // ip6tables works (for addresses added later) and skipped when it does not.
  const bool required = *ipv6 == Ipv6Mode::kOn || (!flags.cleanup && hasGlobalIpv6());
  saved = saveNat(IpFamily::kIpv6);
  if (!saved.ok()) {
    if (required) return fail(saved.status(), 1);
    std::printf("# IPv6: skipped (%sip6tables does not work here: %s)\n",
                flags.cleanup ? "" : "no global IPv6 address, and ",
                std::string(saved.status().message()).c_str());
    return 0;
  }
  if (absl::Status status =
          applyFamily(*options, IpFamily::kIpv6, *saved, flags.cleanup, flags.dry_run);
      !status.ok()) {
    return fail(status, 1);
  }
  return 0;
}

}  // namespace tracecar::proxy
