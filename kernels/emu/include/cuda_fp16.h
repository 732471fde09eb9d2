// Emulator shim: <cuda_fp16.h> resolves here when a .cu file is compiled as C++ by aural's CUDA-on-CPU
// emulator. Everything (__half, __half2, conversions, arithmetic) is defined in cuda_emu.h.
#pragma once
#include "../cuda_emu.h"
