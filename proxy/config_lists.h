#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config_yaml.h"

namespace tracecar::proxy {

// The file's settings that are a list, or one comma-separated string: routes,
// tracing.propagators, tracing.known_methods, tracing.trust_incoming_context and sampling.rules.
// Every bad element is reported, not only the first: a list's at its own line and index
// ("routes[2]: ..."), a string's by its position ("element 3 (`bogus`): ..."). The setting is
// applied only when no element is bad.
void readRoutes(FileReader& r, const Entry& entry);
void readPropagators(FileReader& r, const Entry& entry);
void readKnownMethods(FileReader& r, const Entry& entry);
void readTrustPolicy(FileReader& r, const Entry& entry);
void readSamplingRules(FileReader& r, const Entry& entry);

// Checks one element of a comma-separated list: what is wrong with it, empty when nothing is.
using ElementCheck = std::function<std::string(std::string_view element)>;

// The errors of a comma-separated list, one for each element (blanks around it trimmed) that is
// empty or that check refuses, each worded "element N (`text`): why". A list of one element gets
// check's message as it is.
std::vector<std::string> elementErrors(std::string_view text, const ElementCheck& check);

// Every error of sampling rules in their text form ("/healthz=never, *=10%"), as elementErrors
// words them; empty when the text parses.
std::vector<std::string> samplingRuleErrors(std::string_view text);

}  // namespace tracecar::proxy
