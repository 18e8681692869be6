#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tracecar::http {

// The header fields of one message, in arrival order, each with the name spelled as received.
// Names are matched ASCII case-insensitively. Field bytes live in one buffer owned by the map
// and the positions of the first fields inside the map itself, so a typical message costs one
// allocation; views returned stay valid until the map is next modified (moving it is not).
//
// Satisfies propagation's HeaderReader / HeaderWriter concepts through a small adapter in
// proxy/ (http never knows a tracing header name).
class HeaderMap {
 public:
  HeaderMap() = default;
  HeaderMap(const HeaderMap& other) = default;
  // A moved-from map is empty, and its byte count with it (serialize writes what it counts).
  HeaderMap(HeaderMap&& other) noexcept
      : bytes_(std::move(other.bytes_)),
        entries_(std::move(other.entries_)),
        dead_bytes_(std::exchange(other.dead_bytes_, 0)) {}
  // On failure (out of memory) the map is left empty, never with fields its bytes lack.
  HeaderMap& operator=(const HeaderMap& other);
  HeaderMap& operator=(HeaderMap&& other) noexcept;
  ~HeaderMap() = default;

  size_t size() const noexcept;  // number of fields
  bool empty() const noexcept { return size() == 0; }
  std::string_view name(size_t index) const noexcept;
  std::string_view value(size_t index) const noexcept;

  // Appends a field (no validation: the codec validated what it parsed).
  void add(std::string_view name, std::string_view value);
  // Appends a field an HTTP/2 codec received and checked: its name is lowercase and both pass
  // RFC 9113's field rules, so it can be sent on HTTP/2 as it is. Any change to the field's
  // value (set) drops that mark.
  void addVerified(std::string_view name, std::string_view value);
  // Was the field at index added by addVerified (and not changed since)?
  bool verified(size_t index) const noexcept;
  // Room for this many fields and bytes of names and values without growing.
  void reserve(size_t fields, size_t bytes);
  // Replaces every field of name by one field holding value, at the place of the first one
  // (or at the end when there was none).
  void set(std::string_view name, std::string_view value);
  // Removes every field of name; returns how many went.
  size_t remove(std::string_view name);
  // Removes every field whose name starts with prefix (case-insensitively).
  size_t removePrefix(std::string_view prefix);
  // Removes, in one pass, every field for which drop(name, value) holds; returns how many went.
  // The views drop gets stay valid for the whole pass.
  template <class Drop>
  size_t removeWhere(Drop&& drop) {
    const size_t removed = removeIf([&](const Entry& e) {
      return drop(std::string_view(bytes_.data() + e.name_offset, e.nameLength()),
                  std::string_view(bytes_.data() + e.value_offset, e.value_length));
    });
    compactIfWasteful();
    return removed;
  }
  void clear() noexcept;

  // The first field of name.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  size_t count(std::string_view name) const noexcept;
  // Calls visit(value) for every field of name, in order.
  template <class Visit>
  void forEach(std::string_view name, Visit&& visit) const {
    for (size_t i = 0; i < size(); ++i) {
      if (nameEquals(this->name(i), name)) visit(value(i));
    }
  }
  // Every value of name, joined with ", " as one list.
  std::string joined(std::string_view name) const;
  // Does any field of name hold token in its comma-separated list (case-insensitive)? For
  // Connection, Transfer-Encoding, Expect, Upgrade.
  bool hasToken(std::string_view name, std::string_view token) const noexcept;

  // Bytes of the fields as HTTP/1.1 lines: name + ": " + value + CRLF, summed.
  size_t byteSize() const noexcept;
  // Bytes of every name and value, summed.
  size_t fieldBytes() const noexcept;
  // Appends "name: value\r\n" for every field.
  void serialize(std::string& out) const;

  static bool nameEquals(std::string_view a, std::string_view b) noexcept;

 private:
  static constexpr uint32_t kVerified = 0x80000000U;  // in name_bits: set by addVerified

  struct Entry {
    uint32_t name_offset;
    uint32_t name_bits;  // the name's length, and kVerified
    uint32_t value_offset;
    uint32_t value_length;
    uint32_t nameLength() const noexcept { return name_bits & ~kVerified; }
  };

  // A growable array of trivially copyable elements whose first N live inside the object, so a
  // message with few fields needs no allocation for them.
  template <class T, size_t N>
  class InlineArray {
    static_assert(std::is_trivially_copyable_v<T>);

   public:
    InlineArray() noexcept {}  // NOLINT: leaves inline_ uninitialized, on purpose
    InlineArray(const InlineArray& other) { assign(other); }
    InlineArray(InlineArray&& other) noexcept { take(other); }
    InlineArray& operator=(const InlineArray& other) {
      if (this != &other) assign(other);
      return *this;
    }
    InlineArray& operator=(InlineArray&& other) noexcept {
      if (this != &other) {
        release();
        take(other);
      }
      return *this;
    }
    ~InlineArray() { release(); }

    T* begin() noexcept { return data_; }
    T* end() noexcept { return data_ + size_; }
    const T* begin() const noexcept { return data_; }
    const T* end() const noexcept { return data_ + size_; }
    size_t size() const noexcept { return size_; }
    T& operator[](size_t i) noexcept { return data_[i]; }
    const T& operator[](size_t i) const noexcept { return data_[i]; }
    void reserve(size_t n) {
      if (n > capacity_) grow(n);
    }
    void push_back(const T& value) {
      if (size_ == capacity_) grow(size_ + 1);
      data_[size_++] = value;
    }
    void truncate(size_t n) noexcept { size_ = n; }  // n <= size()
    void clear() noexcept { size_ = 0; }

   private:
    void grow(size_t n) {
      const size_t capacity = n > 2 * capacity_ ? n : 2 * capacity_;
      T* bigger = static_cast<T*>(::operator new(capacity * sizeof(T)));
      std::memcpy(bigger, data_, size_ * sizeof(T));
      if (data_ != inline_) ::operator delete(data_);
      data_ = bigger;
      capacity_ = capacity;
    }
    void assign(const InlineArray& other) {
      size_ = 0;
      reserve(other.size_);
      std::memcpy(data_, other.data_, other.size_ * sizeof(T));
      size_ = other.size_;
    }
    void take(InlineArray& other) noexcept {
      if (other.data_ == other.inline_) {
        std::memcpy(inline_, other.inline_, other.size_ * sizeof(T));
      } else {
        data_ = other.data_;
        capacity_ = other.capacity_;
        other.data_ = other.inline_;
        other.capacity_ = N;
      }
      size_ = other.size_;
      other.size_ = 0;
    }
    void release() noexcept {
      if (data_ != inline_) ::operator delete(data_);
      data_ = inline_;
      capacity_ = N;
      size_ = 0;
    }

    T* data_ = inline_;
    size_t size_ = 0;
    size_t capacity_ = N;
    T inline_[N];
  };

  // Names and values back to back, always on the heap: moving the map keeps views valid.
  class Bytes {
   public:
    Bytes() noexcept = default;
    Bytes(const Bytes& other);
    Bytes(Bytes&& other) noexcept;
    Bytes& operator=(const Bytes& other);
    Bytes& operator=(Bytes&& other) noexcept;
    ~Bytes();

    const char* data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    size_t capacity() const noexcept { return capacity_; }
    void reserve(size_t capacity);
    // Within the capacity reserved.
    void append(std::string_view text) noexcept {
      if (!text.empty()) std::memcpy(data_ + size_, text.data(), text.size());
      size_ += text.size();
    }
    void clear() noexcept { size_ = 0; }
    void swap(Bytes& other) noexcept;

   private:
    char* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
  };

  // Copies text to the end of bytes_ and returns its offset.
  uint32_t append(std::string_view text);
  void addField(std::string_view name, std::string_view value, uint32_t flags);
  // Drops entries for which drop(entry) holds; returns how many went.
  template <class Drop>
  size_t removeIf(Drop&& drop);
  void compactIfWasteful();

  Bytes bytes_;
  InlineArray<Entry, 8> entries_;
  size_t dead_bytes_ = 0;  // bytes of removed fields still in bytes_ (compacted when large)
};

template <class Drop>
size_t HeaderMap::removeIf(Drop&& drop) {
  size_t removed = 0;
  Entry* kept = entries_.begin();
  for (Entry* it = entries_.begin(); it != entries_.end(); ++it) {
    if (drop(*it)) {
      dead_bytes_ += it->nameLength() + it->value_length;
      ++removed;
    } else {
      *kept++ = *it;
    }
  }
  entries_.truncate(static_cast<size_t>(kept - entries_.begin()));
  return removed;
}

}  // namespace tracecar::http
