# All dependencies come from Debian packages; scripts/install-deps.sh installs them.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(absl REQUIRED)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(prometheus-cpp REQUIRED)
# libuv is linked from its static library (libuv1-dev ships both) so that the linker can send its
# socket reads and writes to base/direct_syscalls.cc: glibc's wrappers of read, write and writev
# are thread cancellation points, which in a multi-threaded process costs two atomic operations
# per call, and tracecar never cancels a thread. Its epoll_ctl calls go there too, which watches
# the data path's connections edge-triggered (base/edge_triggered.h). Not with the sanitizers,
# whose interceptors check those calls' buffers.
option(TRACECAR_STATIC_LIBUV "Link libuv's static library instead of its shared one" ON)
option(TRACECAR_DIRECT_SYSCALLS
       "read, write and writev (tracecar's and libuv's) as plain system calls, not glibc's cancellable wrappers, and the data path's sockets edge-triggered (only with TRACECAR_STATIC_LIBUV, never with TRACECAR_SANITIZE)"
       ON)
# Decided on every configure, so that turning the sanitizers on in an existing build directory
# turns this off too.
set(TRACECAR_USE_DIRECT_SYSCALLS ${TRACECAR_DIRECT_SYSCALLS})
if(TRACECAR_USE_DIRECT_SYSCALLS AND TRACECAR_SANITIZE)
  message(STATUS "TRACECAR_DIRECT_SYSCALLS: off with the sanitizers")
  set(TRACECAR_USE_DIRECT_SYSCALLS OFF)
elseif(TRACECAR_USE_DIRECT_SYSCALLS AND NOT TRACECAR_STATIC_LIBUV)
  message(STATUS "TRACECAR_DIRECT_SYSCALLS: off with a shared libuv, which calls glibc's "
                 "wrappers whatever tracecar links")
  set(TRACECAR_USE_DIRECT_SYSCALLS OFF)
endif()
if(TRACECAR_STATIC_LIBUV)
  pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv-static)
else()
  pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
endif()
# What every target using libuv links.
add_library(tracecar_libuv INTERFACE)
target_link_libraries(tracecar_libuv INTERFACE PkgConfig::LIBUV)
if(TRACECAR_USE_DIRECT_SYSCALLS)
  # --undefined pulls the wrappers in wherever the archive falls on the link line: static
  # archives after it (Abseil's) call read too.
  add_library(direct_syscalls STATIC ${PROJECT_SOURCE_DIR}/base/direct_syscalls.cc)
  target_include_directories(direct_syscalls PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_definitions(direct_syscalls PRIVATE TRACECAR_DIRECT_SYSCALLS=1)
  target_link_libraries(tracecar_libuv INTERFACE direct_syscalls)
  target_link_options(tracecar_libuv INTERFACE
    "LINKER:--wrap=read,--wrap=write,--wrap=writev"
    "LINKER:--wrap=epoll_ctl,--wrap=epoll_wait,--wrap=epoll_pwait"
    "LINKER:--undefined=__wrap_read,--undefined=__wrap_write,--undefined=__wrap_writev"
    "LINKER:--undefined=__wrap_epoll_ctl,--undefined=__wrap_epoll_wait"
    "LINKER:--undefined=__wrap_epoll_pwait")
  target_compile_definitions(tracecar_libuv INTERFACE TRACECAR_DIRECT_SYSCALLS=1)
endif()
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)

# Abseil is linked statically (libabsl-dev ships both kinds): as shared libraries, the 27 that
# absl::Status and StatusOr pull in cost every tracecar process about 750 KB of resident memory
# when idle (their relocated data and the pages the loader touches), for a few functions.
option(TRACECAR_STATIC_ABSL "Link Abseil's static libraries instead of its shared ones" ON)
function(tracecar_use_static_archives pattern)
  get_property(imported DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(target IN LISTS imported)
    if(NOT target MATCHES "${pattern}")
      continue()
    endif()
    get_target_property(type ${target} TYPE)
    if(NOT type STREQUAL "SHARED_LIBRARY")
      continue()
    endif()
    get_target_property(configs ${target} IMPORTED_CONFIGURATIONS)
    foreach(config IN LISTS configs)
      get_target_property(location ${target} IMPORTED_LOCATION_${config})
      string(REGEX REPLACE "\\.so(\\.[0-9.]*)?$" ".a" archive "${location}")
      if(NOT EXISTS "${archive}")
        message(FATAL_ERROR "${target}: no static library ${archive} (configure with "
                            "-DTRACECAR_STATIC_ABSL=OFF to link the shared one)")
      endif()
      set_target_properties(${target} PROPERTIES IMPORTED_LOCATION_${config} "${archive}"
                                                 IMPORTED_NO_SONAME_${config} TRUE)
    endforeach()
  endforeach()
endfunction()
if(TRACECAR_STATIC_ABSL)
  tracecar_use_static_archives("^absl::")
endif()

if(TRACECAR_TESTS)
  find_package(GTest REQUIRED)
endif()
if(TRACECAR_BENCH)
  find_package(benchmark REQUIRED)
endif()

# llhttp: Debian's node-llhttp ships the C sources; we compile them as a static library.
set(LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH "Directory holding llhttp's C sources")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "Directory holding llhttp.h")
if(NOT EXISTS ${LLHTTP_SOURCE_DIR}/llhttp.c OR NOT EXISTS ${LLHTTP_INCLUDE_DIR}/llhttp.h)
  message(FATAL_ERROR "llhttp sources not found in ${LLHTTP_SOURCE_DIR} (install node-llhttp)")
endif()
add_library(llhttp STATIC ${LLHTTP_SOURCE_DIR}/llhttp.c ${LLHTTP_SOURCE_DIR}/api.c
                          ${LLHTTP_SOURCE_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
