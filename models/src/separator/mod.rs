//! The separator of the S5 system (seed 003, DCASE 2025 task 4): ResUNet30 conditioned by FiLM, as
//! AudioSep and the DCASE 2025 baseline have it (DESIGN.md §6.5), inference.
//!
//! mixture (B, C_in, L) → STFT of every channel (periodic Hann, center, reflect) → |X| with bn0 over
//! the frequency bins, time padded to a multiple of 32, Nyquist bin dropped
//! ([`magnitude_input`](aural_runtime::ops::complex_mask::magnitude_input)) → pre_conv 1×1 → six
//! encoder ConvBlockRes + average pools → centre block → six decoders (ConvTranspose2d, skip concat
//! read without a copy, ConvBlockRes) → after_conv 1×1 → the complex mask of every input channel and
//! target, `out_conv` 4 → 1 over real and imaginary parts, the source gate
//! ([`complex_mask`](aural_runtime::ops::complex_mask::complex_mask), one fused pass) → iSTFT with the
//! input's length → (B, S, O, L).
//!
//! Every pre-activation (BatchNorm in eval mode + FiLM's β + LeakyReLU 0.01) is fused into the input
//! read of the convolution that follows it, and every residual into its convolution's epilogue.
//! Every op is a runtime op, so the model runs on the CPU, a GPU or the emulator.
//!
//! Checkpoint: a directory with `config.json` ([`SeparatorConfig`]) and `model.safetensors` with the
//! baseline's `state_dict()` names: `base.{bn0, pre_conv, encoder_block{1..6}.conv_block1.{bn1, bn2,
//! conv1, conv2, shortcut}, conv_block7a.conv_block1.…, decoder_block{1..6}.{bn1, conv1,
//! conv_block2.…}, after_conv, out_conv}`, `film.<block path joined with '->'>.{weight,bias}`,
//! `label_embedding.{0,1,3,4}.*`. Derived tensors (torchlibrosa's STFT/iSTFT buffers `base.stft.*`,
//! `base.istft.*`, BatchNorm's `num_batches_tracked`) and the dead ones (decoder `bn2`, decoder
//! `film…->beta2`) may be present and are ignored. A missing or mis-shaped tensor is an error naming
//! it and both shapes; any other tensor is listed in [`ResUNet::unexpected`].
//! `scripts/convert_separator_ckpt.py` makes such a directory from a PyTorch (Lightning) checkpoint.
//!
//! CP-JKU's extensions (seed 003; [`cpjku`], switched on in the config): time-FiLM from the stage-2
//! SED model's strong logits, its hidden states injected at the bottleneck, a dual-path RNN there,
//! and the iterative model (the previous estimate as an extra input channel, tensors under
//! `base.ss_model.`); they take [`Conditions`] ([`ResUNet::forward_with`]), computed by
//! [`crate::m2d::M2dSed`]. `scripts/convert_cpjku_ckpt.py` exports both models from one checkpoint.

pub mod config;
pub mod cpjku;
pub mod film;
pub mod resunet;
pub mod separate;
pub mod train;

pub use config::{Conditioning, DprnnConfig, DprnnPosition, InjectConfig, InjectMethod, SeparatorConfig, TimeFilmKind, S5_CLASSES};
pub use cpjku::Conditions;
pub use resunet::{NetExtras, ResUNet};
pub use separate::{label_passes, label_vector, separate_conditioned, separate_long, ChunkOpts, LabelPass};
