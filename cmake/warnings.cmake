# Warnings are errors on our own code only; third-party sources (llhttp) are built without them.
function(tracecar_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wpedantic)
  # g++ 12 at -O3 reports -Wrestrict inside std::string concatenation that cannot overlap (GCC
  # bug 105329); keep it a warning there rather than fail Release builds on it.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-error=restrict)
  endif()
endfunction()
