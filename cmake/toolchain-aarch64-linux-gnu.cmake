# toolchain-aarch64-linux-gnu.cmake - cross-builds the runtime for 64-bit ARM Linux with Debian's
# gcc-aarch64-linux-gnu: cmake -DKILN_RUNTIME_ONLY=ON -DCMAKE_TOOLCHAIN_FILE=this-file.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)

# Headers and libraries come from the target's sysroot only; build tools from the host.
# Appended, so -DCMAKE_FIND_ROOT_PATH=DIR can add another root (an installed kiln, say).
list(APPEND CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Target programs (try_run, tests) run under qemu's user-mode emulation when it is installed.
find_program(KILN_QEMU_AARCH64 qemu-aarch64-static)
if(KILN_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${KILN_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
endif()
