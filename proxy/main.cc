#include <csignal>

#include "proxy/cli.h"

int main(int argc, char** argv) {
  // A peer that closes while we write must be an error on that connection, not a signal that
  // kills the sidecar.
  std::signal(SIGPIPE, SIG_IGN);
  return tracecar::proxy::runCli(argc, argv);
}
