#include "proxy/config_workers.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

namespace tracecar::proxy {
namespace {

std::string_view trimmed(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<long long> wholeNumber(std::string_view text) noexcept {
  text = trimmed(text);
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The cgroup path of this process for cgroup v2 ("0::/path") or for the v1 hierarchy whose
// controller list holds "cpu" ("4:cpu,cpuacct:/path").
struct CgroupPaths {
  std::optional<std::string> v2;
  std::optional<std::string> v1_cpu;
  std::string v1_controllers;  // the hierarchy's controller list, e.g. "cpu,cpuacct"
};

CgroupPaths parseProcSelfCgroup(std::string_view text) {
  CgroupPaths out;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    const size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    const size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view id = line.substr(0, first);
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string path(line.substr(second + 1));
    if (id == "0" && controllers.empty()) {
      out.v2 = path;
      continue;
    }
    std::string_view list = controllers;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      if (list.substr(0, comma) == "cpu") {
        out.v1_cpu = path;
        out.v1_controllers = std::string(controllers);
      }
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  return out;
}

// base + path, then each ancestor up to base itself.
std::vector<std::string> selfAndAncestors(const std::string& base, std::string path) {
  std::vector<std::string> dirs;
  while (!path.empty() && path.back() == '/') path.pop_back();
  while (!path.empty()) {
    dirs.push_back(base + path);
    const size_t slash = path.rfind('/');
    path.resize(slash == std::string::npos ? 0 : slash);
  }
  dirs.push_back(base);
  return dirs;
}

void keepTightest(std::optional<CpuLimit>& best, double cores, const std::string& file) {
  if (!best || cores < best->cores) best = CpuLimit{cores, file};
}

void readV2(const std::string& root, const std::optional<std::string>& path,
            std::optional<CpuLimit>& best) {
  std::vector<std::string> dirs = selfAndAncestors(root, path.value_or(""));
  // Inside a container's cgroup namespace (or a private mount) the named path may not exist:
  // the root is then the container's own cgroup.
  if (dirs.size() > 1 && !readFile(dirs.front() + "/cgroup.controllers") &&
      !readFile(dirs.front() + "/cpu.max")) {
    dirs = {root};
  }
  for (const std::string& dir : dirs) {
    const std::string file = dir + "/cpu.max";
    if (const auto text = readFile(file)) {
      if (const auto cores = parseCgroupV2CpuMax(*text)) keepTightest(best, *cores, file);
    }
  }
}

void readV1(const std::string& root, const CgroupPaths& paths, std::optional<CpuLimit>& best) {
  std::vector<std::string> bases;
  if (!paths.v1_controllers.empty()) bases.push_back(root + "/" + paths.v1_controllers);
  for (const char* name : {"cpu", "cpu,cpuacct", "cpuacct,cpu"}) {
    const std::string base = root + "/" + name;
    if (std::find(bases.begin(), bases.end(), base) == bases.end()) bases.push_back(base);
  }
  for (const std::string& base : bases) {
    if (!readFile(base + "/cpu.cfs_quota_us")) continue;  // not this mount
    std::vector<std::string> dirs = selfAndAncestors(base, paths.v1_cpu.value_or(""));
    if (dirs.size() > 1 && !readFile(dirs.front() + "/cpu.cfs_quota_us")) dirs = {base};
    for (const std::string& dir : dirs) {
      const auto quota = readFile(dir + "/cpu.cfs_quota_us");
      const auto period = readFile(dir + "/cpu.cfs_period_us");
      if (!quota || !period) continue;
      if (const auto cores = parseCgroupV1Quota(*quota, *period)) {
        keepTightest(best, *cores, dir + "/cpu.cfs_quota_us");
      }
    }
    return;
  }
}

std::string availableCpusText(size_t cpus) {
  return std::to_string(cpus) + (cpus == 1 ? " available CPU" : " available CPUs");
}

}  // namespace

std::optional<double> parseCgroupV2CpuMax(std::string_view content) {
  content = trimmed(content);
  const size_t space = content.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view quota = content.substr(0, space);
  if (quota == "max") return std::nullopt;
  const auto q = wholeNumber(quota);
  const auto p = wholeNumber(content.substr(space + 1));
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
  return static_cast<double>(*q) / static_cast<double>(*p);
}

std::optional<double> parseCgroupV1Quota(std::string_view quota_us, std::string_view period_us) {
  const auto q = wholeNumber(quota_us);
  const auto p = wholeNumber(period_us);
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;  // -1 means no limit
  return static_cast<double>(*q) / static_cast<double>(*p);
}

std::optional<CpuLimit> cgroupCpuLimit(const CpuProbe& probe) {
  const CgroupPaths paths = parseProcSelfCgroup(readFile(probe.proc_self_cgroup).value_or(""));
  std::optional<CpuLimit> best;
  readV2(probe.cgroup_root, paths.v2, best);
  readV1(probe.cgroup_root, paths, best);
  return best;
}

size_t availableCpus(const CpuProbe& probe) {
  if (probe.available_cpus) return std::max<size_t>(1, *probe.available_cpus);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<size_t>(count);
  }
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<size_t>(online) : 1;
}

WorkerCount defaultWorkerCount(const CpuProbe& probe) {
  const size_t cpus = availableCpus(probe);
  if (const std::optional<CpuLimit> limit = cgroupCpuLimit(probe)) {
    const auto rounded = static_cast<size_t>(std::ceil(limit->cores - 1e-9));
    const size_t workers = std::clamp<size_t>(rounded, 1, cpus);
    char cores[32];
    std::snprintf(cores, sizeof(cores), "%g", limit->cores);
    std::string reason = "CPU limit " + std::string(cores) + " from " + limit->file;
    if (rounded > cpus) reason += ", capped to the " + availableCpusText(cpus);
    return WorkerCount{workers, reason};
  }
  return WorkerCount{cpus, availableCpusText(cpus) + ", no cgroup CPU limit"};
}

}  // namespace tracecar::proxy
