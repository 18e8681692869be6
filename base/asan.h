#pragma once

// TRACECAR_ASAN is defined when this translation unit is built with AddressSanitizer (g++ or
// clang): code that keeps freed memory for reuse steps aside so that ASan sees every free.
#if defined(__SANITIZE_ADDRESS__)
#define TRACECAR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRACECAR_ASAN 1
#endif
#endif
