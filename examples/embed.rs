//! AST embeddings from Rust: HF `ASTFeatureExtractor` features and an `ASTModel` checkpoint directory.
//!
//! ```sh
//! cargo run --release --example embed -- AST_DIR clip.wav
//! ```

use aural::models::ast::AstModel;
use aural::models::audio::{self, Channels};
use aural::runtime::ops::fbank::{fbank, AstNorm, FbankOpts};
use aural::{Device, Tensor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(wav)) = (args.first(), args.get(1)) else {
        anyhow::bail!("usage: embed AST_DIR clip.wav");
    };
    let (device, _) = Device::auto();
    let model = AstModel::load(dir, device, None)?;
    let c = model.config.clone();
    // 16 kHz mono → kaldi fbank → AST's padding and AudioSet normalisation (HF ASTFeatureExtractor)
    let audio = audio::load(wav, 16000, Channels::MixDown)?;
    let opts = FbankOpts { num_mel_bins: c.num_mel_bins, ast_norm: Some(AstNorm { max_length: c.max_length, ..AstNorm::AUDIOSET }), ..Default::default() };
    let n = audio.num_samples();
    let x = fbank(&Tensor::from_vec(audio.mono().to_vec(), &[n])?.to_device(device)?, &opts)?.reshape(&[1, c.max_length, c.num_mel_bins])?;
    let hidden = model.forward(&x)?; // last_hidden_state: (1, tokens, hidden_size)
    let pooled = model.pooled(&hidden)?.to_device(Device::Cpu)?.to_vec()?; // (cls + distillation) / 2
    println!("last_hidden_state {:?}, pooler_output[..4] = {:?}", hidden.shape(), &pooled[..4.min(pooled.len())]);
    Ok(())
}
