#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/config.h"
#include "proxy/config_file.h"

namespace tracecar::proxy {

// One value of the configuration file: the node, its key path and where it is.
struct Entry {
  YAML::Node node;
  std::string path;  // "limits.request.max_headers", "routes[2]"
  YAML::Mark mark;
};

using Handler = std::function<void(const Entry&)>;
struct Field {
  std::string_view key;
  Handler read;
};

std::string joinPath(std::string_view path, std::string_view key);
// ASCII lowercase, for keys and enum-like values that match case-insensitively.
std::string lowercase(std::string_view s);
// message without prefix, when it starts with it (a module's "sampling rules: ", which the key
// path replaces).
std::string withoutPrefix(std::string message, std::string_view prefix);

// Walks a YAML configuration file: typed values, maps with known keys, and errors that carry
// the file name, line, column and key path.
class FileReader {
 public:
  FileReader(std::string_view name, LoadedConfig& loaded, FileEnvLayer& layer)
      : name_(name), loaded_(loaded), layer_(layer) {}

  LoadedConfig& loaded() { return loaded_; }
  FileEnvLayer& layer() { return layer_; }

  // "name:line", for origins.
  std::string location(const YAML::Mark& mark) const;
  // "name:line:column", for errors.
  std::string position(const YAML::Mark& mark) const;

  // Appends "name:line:column: path: message" to the errors.
  void error(const YAML::Mark& mark, std::string_view path, std::string_view message);
  void error(const Entry& entry, std::string_view message);

  // Records that the file set entry's key.
  void setOrigin(const Entry& entry);
  // Records the file's value of a setting shared with variable, in the variable's syntax.
  void setEnv(const Entry& entry, std::string_view variable, std::string text);

  // Calls the handler of each key of a map; reports unknown and duplicate keys. A null node (a
  // section with every key commented out) is an empty map.
  void readMap(const Entry& entry, std::initializer_list<Field> fields);

  // How a value is quoted in messages: "\"text\"", "a list", "a map", "no value".
  static std::string describe(const YAML::Node& node);

  // Typed values. Each reports what is wrong (with the value) and returns std::nullopt.
  std::optional<std::string> scalar(const Entry& entry, std::string_view want);
  std::optional<std::string> nonEmptyString(const Entry& entry);
  std::optional<long long> integer(const Entry& entry, long long min, long long max);
  std::optional<bool> boolean(const Entry& entry);  // true or false
  // Between 1ms (0 when zero_allowed) and kMaxDuration.
  std::optional<std::chrono::milliseconds> duration(const Entry& entry, bool zero_allowed = false);
  std::optional<HostPort> address(const Entry& entry, AddressUse use);

  // A list of non-empty strings: std::nullopt (reported) when the value is not a list. Every
  // element that is not a non-empty string is reported at its own line and left out, the others
  // kept with their own key paths ("routes[2]"). A caller checks each of them too, in each (run
  // on every element kept, in order, so that the errors come in the file's order), and applies
  // the list only when errorCount() did not change.
  std::optional<std::vector<Entry>> stringList(const Entry& entry, const Handler& each = {});

  // The errors reported so far, by every reader of the file.
  size_t errorCount() const { return loaded_.errors.size(); }

  // A map of non-empty keys to scalar values, in file order, each with its entry.
  std::vector<std::pair<FileEnvLayer::Pair, Entry>> stringMap(const Entry& entry);

 private:
  std::string name_;
  LoadedConfig& loaded_;
  FileEnvLayer& layer_;
};

}  // namespace tracecar::proxy
