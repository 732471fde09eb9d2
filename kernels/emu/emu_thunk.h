// aural emulator: generic thunks. build.rs appends AURAL_EMU_EXPORT(name, file) for every exported
// (extern "C", non-template) __global__ of a .cu file; the parameter types come from the kernel's own
// signature by template deduction, so any parameter type (pointers, scalars, structs) works.
#pragma once
#include <stddef.h>
#include <type_traits>
#include <utility>

struct AuralEmuKernel {
    const char* name;
    void (*thunk)(void**);
    unsigned nparams;
    const unsigned* sizes;  // sizeof of each parameter
    const char* file;
};

namespace aural_emu_detail {
template <class... A> struct Sig {
    static constexpr unsigned n = sizeof...(A);
    static constexpr unsigned sizes[sizeof...(A) + 1] = {(unsigned)sizeof(A)..., 0u};
    template <size_t... I> static void call(void (*f)(A...), void** p, std::index_sequence<I...>) {
        (void)p;
        f(*reinterpret_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
    }
    static void invoke(void (*f)(A...), void** p) { call(f, p, std::index_sequence_for<A...>{}); }
};
template <class... A> Sig<A...> sig_of(void (*)(A...));
}  // namespace aural_emu_detail

#define AURAL_EMU_EXPORT(NAME, FILE)                                                                \
    extern "C" void aural_emu_thunk_##NAME(void** p) {                                              \
        decltype(aural_emu_detail::sig_of(&NAME))::invoke(&NAME, p);                                \
    }                                                                                               \
    extern "C" const AuralEmuKernel aural_emu_kinfo_##NAME = {                                      \
        #NAME, aural_emu_thunk_##NAME, decltype(aural_emu_detail::sig_of(&NAME))::n,               \
        decltype(aural_emu_detail::sig_of(&NAME))::sizes, FILE};
