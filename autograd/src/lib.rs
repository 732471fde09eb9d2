//! # aural-autograd
//!
//! A minimal tape autograd (a Wengert list) over the runtime's [`Tensor`]s, the backward rules of the
//! op families, a named parameter store and the AdamW optimizer.
//!
//! - [`Var`] wraps a `Tensor` (an immutable value) with a unique id. Ops on `Var`s ([`ops`]) compute
//!   the forward with runtime ops and, when an input requires a gradient and is attached to a
//!   recording [`Tape`], append one entry (inputs, output, a boxed backward closure) to that tape.
//!   Vars with no tape, or a tape in no-grad mode ([`Tape::no_grad`]), record nothing: inference pays
//!   for no tape and keeps no intermediate tensors alive. A value computed on no tape from parameters
//!   that need a gradient is marked: using it later in an op that records on a tape is an error
//!   (its gradient could never reach those parameters — attach them with [`Tape::watch`] first),
//!   never a silent zero gradient.
//! - [`Tape::backward`] walks the entries once in reverse, accumulating gradients by Var id, freeing
//!   each intermediate gradient once used; it returns the leaves' gradients as [`Grads`].
//! - [`ParamStore`] maps names (the safetensors names) to leaf Vars; it loads and saves through
//!   `aural_runtime::safetensors_io` (atomic write). [`optim`] holds AdamW (torch semantics, parameter
//!   groups, layer-wise LR decay) and global-norm gradient clipping.
//! - Backward rules use runtime ops wherever possible, so they run on every device; layer norm,
//!   softmax and GELU have dedicated backward kernels (`*_bwd_f32_v1`), AdamW a fused kernel, the GRU
//!   recurrence (`gru_bwd_f32_v{1,2}`) and attention (`attention_bwd_f32_v1` for short sequences,
//!   `attention_{dq,dkv}_bwd_f32_v2` for long ones) their own.
//!
//! `AURAL_PROFILE_BACKWARD=1` prints the seconds each op kind's backward rules took, per sweep.
//!
//! A training step:
//! ```no_run
//! # use aural_autograd::{ops, Tape, ParamStore, optim::{AdamW, ParamGroup}};
//! # fn f(store: &mut ParamStore, x: aural_autograd::runtime::Tensor, t: aural_autograd::runtime::Tensor) -> aural_autograd::runtime::Result<()> {
//! let mut opt = AdamW::new(vec![ParamGroup::new(store.names(), 1e-3, 1e-2)]);
//! let tape = Tape::new();
//! let x = tape.constant(x);
//! let h = ops::linear(&x, &store.get("fc.weight")?, Some(&store.get("fc.bias")?))?;
//! let loss = ops::bce(&ops::sigmoid(&h)?, &tape.constant(t))?;
//! let mut grads = tape.backward(&loss)?;
//! aural_autograd::optim::clip_grad_norm(store, &mut grads, 1.0)?;
//! opt.step(store, &grads)?;
//! # Ok(()) }
//! ```
pub use aural_runtime as runtime;

pub mod ops;
pub mod optim;
mod params;
mod tape;
pub mod testing;

pub use params::ParamStore;
pub use tape::{Grads, NoGradGuard, Tape, Var};
