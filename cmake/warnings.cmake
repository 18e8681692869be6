# Warnings are errors on our own code only; third-party sources (llhttp) are built without them.
function(tracecar_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wpedantic)
endfunction()
