#include "proxy/config_yaml.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <set>

namespace tracecar::proxy {
namespace {

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "did you mean" for a near miss, else the list of keys.
std::string unknownKeyHint(std::string_view unknown, const std::vector<std::string_view>& known) {
  std::string_view best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view key : known) {
    const size_t distance = editDistance(lowercase(unknown), key);
    if (distance < best_distance) {
      best = key;
      best_distance = distance;
    }
  }
  if (!best.empty() && best_distance <= std::max<size_t>(2, best.size() / 4)) {
    return "unknown key; did you mean \"" + std::string(best) + "\"?";
  }
  std::string list;
  for (std::string_view key : known) list += (list.empty() ? "" : ", ") + std::string(key);
  return "unknown key (known here: " + list + ")";
}

}  // namespace

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

std::string withoutPrefix(std::string message, std::string_view prefix) {
  if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
  return message;
}

std::string joinPath(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

std::string FileReader::location(const YAML::Mark& mark) const {
  return name_ + ":" + std::to_string(mark.line + 1);
}

std::string FileReader::position(const YAML::Mark& mark) const {
  if (mark.is_null()) return name_;
  return name_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

void FileReader::error(const YAML::Mark& mark, std::string_view path, std::string_view message) {
  std::string text = position(mark) + ": ";
  if (!path.empty()) text += std::string(path) + ": ";
  loaded_.errors.push_back(text + std::string(message));
}

void FileReader::error(const Entry& entry, std::string_view message) {
  error(entry.mark, entry.path, message);
}

void FileReader::setOrigin(const Entry& entry) {
  loaded_.origins[entry.path] = Origin{Source::kFile, location(entry.mark), position(entry.mark)};
}

void FileReader::setEnv(const Entry& entry, std::string_view variable, std::string text) {
  std::string written;
  if (entry.node.IsScalar() && entry.node.Scalar() != text) written = entry.node.Scalar();
  layer_.variables[std::string(variable)] = FileEnvLayer::Value{
      std::move(text), entry.path, location(entry.mark), std::move(written), position(entry.mark)};
}

void FileReader::readMap(const Entry& entry, std::initializer_list<Field> fields) {
  if (entry.node.IsNull()) return;
  if (!entry.node.IsMap()) {
    error(entry, "must be a map of keys to values, got " + describe(entry.node));
    return;
  }
  std::vector<std::string_view> known;
  for (const Field& field : fields) known.push_back(field.key);
  std::map<std::string, int, std::less<>> seen;  // key -> line
  for (auto it = entry.node.begin(); it != entry.node.end(); ++it) {
    const YAML::Node key_node = it->first;
    if (!key_node.IsScalar()) {
      error(key_node.Mark(), entry.path, "keys must be plain strings, got " + describe(key_node));
      continue;
    }
    const std::string& key = key_node.Scalar();
    const std::string path = joinPath(entry.path, key);
    const YAML::Node value = it->second;
    const auto found =
        std::find_if(fields.begin(), fields.end(), [&key](const Field& f) { return f.key == key; });
    if (found == fields.end()) {
      error(key_node.Mark(), path, unknownKeyHint(key, known));
      continue;
    }
    if (const auto previous = seen.find(key); previous != seen.end()) {
      error(key_node.Mark(), path,
            "duplicate key (first set on line " + std::to_string(previous->second) + ")");
      continue;
    }
    seen.emplace(key, key_node.Mark().line + 1);
    // A scalar is reported where it is; a key with no value (whose null node points past it),
    // a list or a map where the key is.
    found->read(Entry{value, path, value.IsScalar() ? value.Mark() : key_node.Mark()});
  }
}

std::string FileReader::describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "\"" + node.Scalar() + "\"";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "no value";
  }
}

std::optional<std::string> FileReader::scalar(const Entry& entry, std::string_view want) {
  if (!entry.node.IsScalar()) {
    error(entry, "must be " + std::string(want) + ", got " + describe(entry.node));
    return std::nullopt;
  }
  return entry.node.Scalar();
}

std::optional<std::string> FileReader::nonEmptyString(const Entry& entry) {
  std::optional<std::string> text = scalar(entry, "a non-empty string");
  if (text && text->empty()) {
    error(entry, "must be a non-empty string");
    return std::nullopt;
  }
  return text;
}

std::optional<long long> FileReader::integer(const Entry& entry, long long min, long long max) {
  const std::string want = min >= 1 ? "a positive integer" : "a non-negative integer";
  const std::optional<std::string> text = scalar(entry, want);
  if (!text) return std::nullopt;
  long long value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  const bool digits = !text->empty() && text->find_first_not_of("-0123456789") == std::string::npos;
  const bool negative = !text->empty() && text->front() == '-';
  if (!digits || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
      end != text->data() + text->size() || (ec == std::errc() && value < min) ||
      (ec == std::errc::result_out_of_range && negative)) {
    error(entry, "must be " + want + ", got \"" + *text + "\"");
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || value > max) {
    error(entry, "must be at most " + std::to_string(max) + ", got \"" + *text + "\"");
    return std::nullopt;
  }
  return value;
}

std::optional<bool> FileReader::boolean(const Entry& entry) {
  const std::optional<std::string> text = scalar(entry, "true or false");
  if (!text) return std::nullopt;
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  error(entry, "must be true or false, got \"" + *text + "\"");
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> FileReader::duration(const Entry& entry,
                                                               bool zero_allowed) {
  const std::optional<std::string> text = scalar(entry, "a duration like 500ms, 10s or 1m");
  if (!text) return std::nullopt;
  const absl::StatusOr<std::chrono::milliseconds> parsed = parseDuration(*text);
  if (!parsed.ok()) {
    error(entry, std::string(parsed.status().message()));
    return std::nullopt;
  }
  const std::chrono::milliseconds least(zero_allowed ? 0 : 1);
  if (*parsed < least || *parsed > kMaxDuration) {
    error(entry, "must be between " + std::to_string(least.count()) + "ms and " +
                     std::to_string(kMaxDuration.count()) + "ms, got \"" + *text + "\"");
    return std::nullopt;
  }
  return *parsed;
}

std::optional<HostPort> FileReader::address(const Entry& entry, AddressUse use) {
  const std::optional<std::string> text = scalar(entry, "an address like 127.0.0.1:8080");
  if (!text) return std::nullopt;
  absl::StatusOr<HostPort> parsed = parseHostPort(*text, use);
  if (!parsed.ok()) {
    error(entry, std::string(parsed.status().message()));
    return std::nullopt;
  }
  return *std::move(parsed);
}

std::optional<std::vector<Entry>> FileReader::stringList(const Entry& entry,
                                                         const Handler& each) {
  if (entry.node.IsNull()) return std::vector<Entry>{};
  if (!entry.node.IsSequence()) {
    error(entry, "must be a list, got " + describe(entry.node));
    return std::nullopt;
  }
  std::vector<Entry> out;
  for (size_t i = 0; i < entry.node.size(); ++i) {
    const YAML::Node item = entry.node[i];
    Entry element{item, entry.path + "[" + std::to_string(i) + "]",
                  item.IsNull() ? entry.mark : item.Mark()};
    if (!nonEmptyString(element)) continue;
    if (each) each(element);
    out.push_back(std::move(element));
  }
  return out;
}

std::vector<std::pair<FileEnvLayer::Pair, Entry>> FileReader::stringMap(const Entry& entry) {
  std::vector<std::pair<FileEnvLayer::Pair, Entry>> out;
  if (entry.node.IsNull()) return out;
  if (!entry.node.IsMap()) {
    error(entry, "must be a map of names to values, got " + describe(entry.node));
    return out;
  }
  std::set<std::string, std::less<>> seen;
  for (auto it = entry.node.begin(); it != entry.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar() || key.Scalar().empty()) {
      error(key.Mark(), entry.path, "names must be non-empty strings, got " + describe(key));
      continue;
    }
    const Entry element{value, joinPath(entry.path, key.Scalar()),
                        value.IsScalar() ? value.Mark() : key.Mark()};
    if (!seen.insert(key.Scalar()).second) {
      error(element, "duplicate key");
      continue;
    }
    if (std::optional<std::string> text = scalar(element, "a string")) {
      out.emplace_back(FileEnvLayer::Pair{key.Scalar(), std::move(*text), location(element.mark)},
                       element);
    }
  }
  return out;
}

}  // namespace tracecar::proxy
