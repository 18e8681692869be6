#include "proxy/cli.h"

int main(int argc, char** argv) { return tracecar::proxy::runCli(argc, argv); }
