#pragma once

namespace tracecar::proxy {

// Parses the command line and runs what it asks for; returns the process exit code.
// Usage errors name the bad argument and return 2.
int runCli(int argc, char** argv) noexcept;

}  // namespace tracecar::proxy
