#pragma once

#include <concepts>
#include <string_view>

#include "propagation/function_ref.h"

namespace tracecar::propagation {

// Called once per header field with that field's value, in the order received.
using FieldValueVisitor = FunctionRef<void(std::string_view value)>;
// Called once per header field with its (lowercase) name and value.
using FieldVisitor = FunctionRef<void(std::string_view name, std::string_view value)>;

// Tracing talks to headers only through these concepts, so the same propagators serve an
// HTTP/1 header map, an HTTP/2 header list and a test map. Names are passed lowercase; a
// carrier matches them case-insensitively if its protocol needs that.
//
// Lifetimes: the views a reader hands to a visitor stay valid until the carrier is next
// modified (extraction keeps them while it parses). set() copies name and value.
template <class C>
concept HeaderReader = requires(const C& carrier, std::string_view name, FieldValueVisitor visit,
                                FieldVisitor visit_all) {
  { carrier.forEach(name, visit) } -> std::same_as<void>;
  { carrier.forEachField(visit_all) } -> std::same_as<void>;
};

template <class C>
concept HeaderWriter = requires(C& carrier, std::string_view name, std::string_view value) {
  // Replaces every field of that name with one field holding value.
  { carrier.set(name, value) } -> std::same_as<void>;
  { carrier.remove(name) } -> std::same_as<void>;
};

template <class C>
concept HeaderCarrier = HeaderReader<C> && HeaderWriter<C>;

// Type-erased views of a carrier, so propagator code lives in .cc files. Built on the stack
// from any carrier; two pointers each, no allocation.
class ReaderRef {
 public:
  template <HeaderReader C>
  ReaderRef(const C& carrier) noexcept  // NOLINT(google-explicit-constructor)
      : carrier_(&carrier),
        for_each_([](const void* c, std::string_view name, FieldValueVisitor visit) {
          static_cast<const C*>(c)->forEach(name, visit);
        }),
        for_each_field_([](const void* c, FieldVisitor visit) {
          static_cast<const C*>(c)->forEachField(visit);
        }) {}

  void forEach(std::string_view name, FieldValueVisitor visit) const {
    for_each_(carrier_, name, visit);
  }
  void forEachField(FieldVisitor visit) const { for_each_field_(carrier_, visit); }

 private:
  const void* carrier_;
  void (*for_each_)(const void*, std::string_view, FieldValueVisitor);
  void (*for_each_field_)(const void*, FieldVisitor);
};

class WriterRef {
 public:
  template <HeaderWriter C>
  WriterRef(C& carrier) noexcept  // NOLINT(google-explicit-constructor)
      : carrier_(&carrier),
        set_([](void* c, std::string_view name, std::string_view value) {
          static_cast<C*>(c)->set(name, value);
        }),
        remove_([](void* c, std::string_view name) { static_cast<C*>(c)->remove(name); }) {}

  void set(std::string_view name, std::string_view value) const { set_(carrier_, name, value); }
  void remove(std::string_view name) const { remove_(carrier_, name); }

 private:
  void* carrier_;
  void (*set_)(void*, std::string_view, std::string_view);
  void (*remove_)(void*, std::string_view);
};

}  // namespace tracecar::propagation
