#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tracecar::proxy {

// Where the default worker count is read from. Tests point these at fake files.
struct CpuProbe {
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string proc_self_cgroup = "/proc/self/cgroup";
  // CPUs this process may run on; std::nullopt: ask the system (sched_getaffinity, else the
  // number of online CPUs).
  std::optional<size_t> available_cpus;
};

// A CPU quota in cores (1.5 for "150000 100000") and the file it came from.
struct CpuLimit {
  double cores = 0;
  std::string file;
};

// The content of a cgroup v2 cpu.max file ("QUOTA PERIOD" or "max PERIOD"): the quota in cores,
// std::nullopt when there is no limit or the text is malformed.
std::optional<double> parseCgroupV2CpuMax(std::string_view content);
// cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us: the quota in cores, std::nullopt when the
// quota is -1 (no limit) or a value is malformed.
std::optional<double> parseCgroupV1Quota(std::string_view quota_us, std::string_view period_us);

// The tightest CPU quota of this process's cgroup and its ancestors: cgroup v2 (cpu.max) or v1
// (cpu.cfs_quota_us / cpu.cfs_period_us under the cpu controller). When the cgroup named by
// /proc/self/cgroup is not visible (a container sees only its own subtree at the root), the
// root of the hierarchy is read. std::nullopt when no quota is set.
std::optional<CpuLimit> cgroupCpuLimit(const CpuProbe& probe);

// The CPUs this process may run on (at least 1).
size_t availableCpus(const CpuProbe& probe);

// The default number of workers: the CPU quota rounded up, no more than the available CPUs,
// else the available CPUs; at least 1. reason says where the number came from.
struct WorkerCount {
  size_t workers = 1;
  std::string reason;
};
WorkerCount defaultWorkerCount(const CpuProbe& probe);

}  // namespace tracecar::proxy
