#pragma once

#include <cstddef>
#include <string_view>

#include "http/header_map.h"
#include "propagation/header_carrier.h"

namespace tracecar::proxy {

// http::HeaderMap as propagation's HeaderReader: the codec never learns a tracing header name
// and propagation never learns the codec's container. Reads hand out views into the map and
// allocate nothing; they stay valid until the map is next modified, as the concept asks.
//
// forEachField gives each name as received (HTTP/1 keeps the client's spelling, e.g.
// "Uberctx-Tenant"): lowercasing would need a copy whose lifetime could not match the
// concept's, and header names are compared case-insensitively anyway (as Jaeger's
// uberctx- extraction does).
class HeaderMapReader {
 public:
  explicit HeaderMapReader(const http::HeaderMap& map) noexcept : map_(&map) {}

  void forEach(std::string_view name, propagation::FieldValueVisitor visit) const {
    map_->forEach(name, visit);
  }
  void forEachField(propagation::FieldVisitor visit) const {
    for (size_t i = 0; i < map_->size(); ++i) visit(map_->name(i), map_->value(i));
  }

 private:
  const http::HeaderMap* map_;
};

// Reader and writer: set() replaces every field of a name by one (keeping the place and the
// spelling of the first), remove() drops every field of a name.
class HeaderMapCarrier {
 public:
  explicit HeaderMapCarrier(http::HeaderMap& map) noexcept : map_(&map) {}

  void forEach(std::string_view name, propagation::FieldValueVisitor visit) const {
    HeaderMapReader(*map_).forEach(name, visit);
  }
  void forEachField(propagation::FieldVisitor visit) const {
    HeaderMapReader(*map_).forEachField(visit);
  }
  void set(std::string_view name, std::string_view value) { map_->set(name, value); }
  void remove(std::string_view name) { map_->remove(name); }

 private:
  http::HeaderMap* map_;
};

static_assert(propagation::HeaderReader<HeaderMapReader>);
static_assert(propagation::HeaderCarrier<HeaderMapCarrier>);

}  // namespace tracecar::proxy
