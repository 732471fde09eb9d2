// adamw.cu — one fused AdamW step (torch.optim.AdamW, maximize=False), f32; amsgrad False
// (adamw_fwd_f32_v1) and True (adamw_amsgrad_fwd_f32_v1).
//
// Math, per element, in torch's order (torch/optim/adam.py, _single_tensor_adam with
// decoupled_weight_decay=True), with the scalars precomputed on the host exactly as the CPU path does
// (runtime/src/ops/adamw/cpu.rs):
//   p ← p · (1 − lr·wd)                      decoupled weight decay, before the Adam update
//   m ← m + (1 − β1)·(g − m)                 exp_avg.lerp_(grad, 1 − β1)
//   v ← v·β2 + (1 − β2)·g·g                  exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1 − β2)
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// amsgrad (torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq) after v is updated):
//   vmax ← max(vmax, v)                      NaN-propagating, as torch.maximum
//   p ← p − (lr / (1 − β1^t)) · m / (√vmax / √(1 − β2^t) + eps)     (v is still stored as exp_avg_sq)
// Layouts: p, g, m, v and the outputs: [n] contiguous (any parameter, flattened). The step writes new
// buffers (p_out, m_out, v_out) — tensors are immutable values in aural.
//
// Versions:
//   v1 — one thread per element, grid-stride, scalar loads. Memory-bound (7 streams of 4 bytes); a
//        multi-tensor variant (one launch for every parameter, as apex's multi_tensor_apply) would
//        remove the per-parameter launch cost; not written yet.
//   amsgrad v1 — the same shape with one more stream in (vmax) and out (the new vmax); a separate
//        kernel rather than a flag so the plain step keeps its 7 streams.
//
// Bytes per launch (minimum): 16·n read + 12·n written (amsgrad: 20·n read + 16·n written).

struct AdamWParams {
    int n;
    float decay;          // 1 − lr·wd
    float one_m_beta1;    // 1 − β1
    float beta2;
    float one_m_beta2;    // 1 − β2
    float neg_step_size;  // −lr / (1 − β1^t)
    float bc2_sqrt;       // √(1 − β2^t)
    float eps;
};
static_assert(sizeof(AdamWParams) == 32, "AdamWParams must match runtime/src/ops/adamw/cuda.rs");

// v1. Launch: 1-D grid × 256 threads, grid-stride over n; one thread owns one element per step.
// p, g, m, v: [n] (inputs); p_out, m_out, v_out: [n] (outputs, distinct from the inputs).
extern "C" __global__ void adamw_fwd_f32_v1(const float* __restrict__ p, const float* __restrict__ g,
                                            const float* __restrict__ m, const float* __restrict__ v,
                                            float* __restrict__ p_out, float* __restrict__ m_out,
                                            float* __restrict__ v_out, const AdamWParams a) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < a.n; i += gridDim.x * blockDim.x) {
        const float gi = g[i];
        const float pi = __fmul_rn(p[i], a.decay);
        const float mi = __fadd_rn(m[i], __fmul_rn(a.one_m_beta1, __fsub_rn(gi, m[i])));
        const float vi = __fadd_rn(__fmul_rn(v[i], a.beta2), __fmul_rn(__fmul_rn(a.one_m_beta2, gi), gi));
        const float denom = __fadd_rn(__fdiv_rn(sqrtf(vi), a.bc2_sqrt), a.eps);
        p_out[i] = __fadd_rn(pi, __fmul_rn(a.neg_step_size, __fdiv_rn(mi, denom)));
        m_out[i] = mi;
        v_out[i] = vi;
    }
}

// amsgrad v1. Launch: 1-D grid × 256 threads, grid-stride over n; one thread owns one element per step.
// p, g, m, v, vmax: [n] (inputs; vmax is the previous max_exp_avg_sq, zeros before the first step);
// p_out, m_out, v_out, vmax_out: [n] (outputs, distinct from the inputs). Same AdamWParams as v1.
extern "C" __global__ void adamw_amsgrad_fwd_f32_v1(const float* __restrict__ p, const float* __restrict__ g,
                                                    const float* __restrict__ m, const float* __restrict__ v,
                                                    const float* __restrict__ vmax, float* __restrict__ p_out,
                                                    float* __restrict__ m_out, float* __restrict__ v_out,
                                                    float* __restrict__ vmax_out, const AdamWParams a) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < a.n; i += gridDim.x * blockDim.x) {
        const float gi = g[i];
        const float pi = __fmul_rn(p[i], a.decay);
        const float mi = __fadd_rn(m[i], __fmul_rn(a.one_m_beta1, __fsub_rn(gi, m[i])));
        const float vi = __fadd_rn(__fmul_rn(v[i], a.beta2), __fmul_rn(__fmul_rn(a.one_m_beta2, gi), gi));
        const float xo = vmax[i];
        // torch.maximum propagates NaN; fmaxf would drop it.
        const float xi = (isnan(xo) || isnan(vi)) ? __int_as_float(0x7fffffff) : fmaxf(xo, vi);
        const float denom = __fadd_rn(__fdiv_rn(sqrtf(xi), a.bc2_sqrt), a.eps);
        p_out[i] = __fadd_rn(pi, __fmul_rn(a.neg_step_size, __fdiv_rn(mi, denom)));
        m_out[i] = mi;
        v_out[i] = vi;
        vmax_out[i] = xi;
    }
}
