// Emulator shim: <cuda_fp16.hpp> resolves here when a .cu file is compiled as C++ by aural's CUDA-on-CPU
// emulator. Everything (nvcuda::wmma, CUDA builtins) is defined in cuda_emu.h.
#pragma once
#include "../cuda_emu.h"
