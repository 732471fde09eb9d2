// Emulator shim: <cuda.h> resolves here when a .cu file is compiled as C++ by aural's CUDA-on-CPU
// emulator. Everything (nvcuda::wmma, CUDA builtins) is defined in cuda_emu.h.
#pragma once
#include "../cuda_emu.h"
