// Emulator shim: assert() in a kernel ends that CUDA thread and fails the launch with file:line
// (defined in cuda_emu.h) instead of aborting the process.
#include "../cuda_emu.h"
#undef assert
#define assert(e) ((e) ? (void)0 : aural_emu_trap("assertion failed: " #e, __FILE__, __LINE__))
