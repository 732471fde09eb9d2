//! The `aural` command-line interface.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "aural", version, about = "aural: a fast inference core for audio deep learning (CPU and CUDA).")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Report the CUDA driver, GPUs, NVRTC, the kernel cache, and which device `auto` picks.
    ///
    /// Examples:
    ///   aural doctor
    ///   aural doctor --device cuda      # exits 2 with one line when no GPU is usable
    ///   aural doctor --compile          # compile every kernel with NVRTC now
    #[command(verbatim_doc_comment)]
    Doctor(cli::doctor::Args),
    /// Measure op throughput (GFLOP/s or GB/s) per op, device and kernel version.
    ///
    /// Examples:
    ///   aural bench
    ///   aural bench --op matmul --json > run.json
    #[command(verbatim_doc_comment)]
    Bench(cli::bench::Args),
    /// Log-mel fbank (torchaudio kaldi, AST's call) or AST input_values of WAV files → safetensors.
    ///
    /// Audio is resampled to 16 kHz (--sample-rate) and mixed down to mono (HF's ASTFeatureExtractor
    /// expects mono 16 kHz); `--channel N` picks one channel instead. The fbank options are
    /// torchaudio's (compliance.kaldi.fbank), defaulting to AST's call. Several inputs are stored as
    /// `<stem>/fbank`.
    ///
    /// Examples:
    ///   aural features clip.wav --out clip.safetensors            # tensor `fbank` (frames × 128)
    ///   aural features clip.wav --out x.safetensors --ast         # tensor `input_values` (1024 × 128)
    ///   aural features a.wav b.wav --out ab.safetensors --device cuda
    ///   aural features clip.wav --out x.safetensors --sample-rate 8000 --num-mel-bins 40 --window hamming
    #[command(verbatim_doc_comment)]
    Features(cli::features::Args),
    /// AST embeddings of WAV files from an HF checkpoint directory (config.json + model.safetensors).
    ///
    /// Audio → 16 kHz mono → AST fbank + normalisation → AST backbone. Writes `last_hidden_state`
    /// (tokens × D) per file (`<stem>/last_hidden_state` for several files); `--layer K` writes
    /// `hidden_states.K` (0 = embeddings, K = output of block K) and runs only K blocks; `--pooled`
    /// writes `pooler_output` = (cls + distillation)/2; `--logits` the classifier's logits of an
    /// ASTForAudioClassification checkpoint.
    ///
    /// Examples:
    ///   aural embed --model ast-finetuned-audioset-10-10-0.4593 clip.wav --out emb.safetensors
    ///   aural embed --model ast/ a.wav b.wav --out ab.safetensors --pooled --device cuda
    ///   aural embed --model ast/ clip.wav --out l10.safetensors --layer 10   # AST-SED's input
    ///   aural embed --model ast-finetuned-audioset-10-10-0.4593 clip.wav --out l.safetensors --logits
    #[command(verbatim_doc_comment)]
    Embed(cli::embed::Args),
    /// Sound event detection with an AST-SED or AST-GRU checkpoint (config.json + model.safetensors).
    ///
    /// Audio → the model's rate, mono → AST fbank → windows of the model's length (longer clips:
    /// overlapping windows, stitched) → frame and clip scores → per-class median filter and
    /// thresholds from config.json → events. Prints the DCASE TSV (filename onset offset
    /// event_label) unless `--tsv FILE` or `--json`.
    ///
    /// Examples:
    ///   aural detect --model ast-sed/ clip.wav
    ///   aural detect --model ast-sed/ clips/*.wav --tsv events.tsv --device cuda
    ///   aural detect --model ast-sed/ clip.wav --json --scores s.safetensors --plot clip.png
    #[command(verbatim_doc_comment)]
    Detect(cli::detect::Args),
    /// DCASE SED metrics of thresholded events or score tables against a strong-label reference.
    ///
    /// Event-based F1 / error rate (sed_eval: collar 200 ms, 20 % of the length), segment-based
    /// (sed_eval, 1 s), and from score tables the threshold-independent PSDS1 / PSDS2
    /// (sed_scores_eval) and the PSDS on the DESED baseline's 50 operating points (psds_eval). Every
    /// file of the durations TSV is evaluated.
    ///
    /// Examples:
    ///   aural evaluate --reference gt.tsv --durations dur.tsv --predictions events.tsv
    ///   aural detect --model ast-sed/ clips/*.wav --scores-dir scores/
    ///   aural evaluate --reference gt.tsv --durations dur.tsv --scores scores/ --json m.json --plot roc.png
    ///   aural evaluate ... --scores scores/ --median-filter 7 --psds1 dtc=0.5,gtc=0.5
    #[command(verbatim_doc_comment)]
    Evaluate(cli::evaluate::Args),
    /// DCASE 2025 task 4 (S5) metrics of separated sources: label accuracy, CA-SDRi, per-class table.
    ///
    /// Reads the baseline's layout: mixtures DIR/<name>.wav (channel 0 is the SDRi baseline),
    /// references and estimates <name>_<Label>.wav (the labels with a file are the reference and the
    /// predicted labels). Per mixture, each true-positive label scores SNR(estimate) − SNR(mixture)
    /// against its reference (SNR with float32 eps, no zero-mean), each false-positive or missed
    /// label 0; CA-SDRi is the mean over the labels, then over the mixtures; label accuracy is the
    /// share of mixtures whose predicted set equals the reference set. Files are matched by exact
    /// name (the baseline matches a name prefix); a mixture without estimates counts as all-missed,
    /// with a warning (the baseline crashes); multi-channel sources are mixed down to mono.
    ///
    /// Examples:
    ///   aural evaluate-s5 --estimates sep/ --reference dev_set/test/oracle_target --mixtures dev_set/test/soundscape
    ///   aural evaluate-s5 --estimates sep/ --reference oracle_target/ --mixtures soundscape/ --json s5.json
    #[command(name = "evaluate-s5", verbatim_doc_comment)]
    EvaluateS5(cli::evaluate_s5::Args),
    /// The DCASE 2025 task 4 system: name the classes in 4-channel mixtures and extract each one.
    ///
    /// Per mixture: the M2D tagger on the reference channel (log-mel, ViT, head) → labels with
    /// probability ≥ --threshold (1 to 3, class-index order; the most probable one if none) → one
    /// separator pass per label (one ResUNetK pass for up to three) → OUTDIR/<stem>_<Label>.wav, and
    /// OUTDIR/labels.tsv (filename, labels). Mixtures must be at the models' rate (32 kHz) unless
    /// --resample, with the separator's channel count. Convert PyTorch checkpoints with
    /// scripts/convert_m2d_ckpt.py and scripts/convert_separator_ckpt.py.
    ///
    /// Examples:
    ///   aural s5 --tagger m2d_at/ --separator resunet/ soundscape/*.wav --out estimates/
    ///   aural s5 --tagger m2d_at/ --separator resunetk/ mix.wav --out est/ --threshold 0.4 --json
    ///   aural evaluate-s5 --estimates est/ --reference oracle_target/ --mixtures soundscape/
    #[command(verbatim_doc_comment)]
    S5(cli::s5::Args),
    /// Extract the sources of given classes from a mixture with a ResUNet30 separator checkpoint
    /// (the DCASE 2025 task 4 baseline's ResUNet / ResUNetK, AudioSep's query-conditioned model).
    ///
    /// Audio → the model's rate with all its channels (4 for the DCASE baseline; another count is
    /// refused) → STFT → ResUNet30 conditioned on the label (FiLM) → complex mask per channel,
    /// out_conv → iSTFT. One pass per label (ResUNetK: up to three per pass); clips longer than
    /// --chunk seconds run in overlapping crossfaded chunks. Writes OUTDIR/<stem>_<Label>.wav
    /// (32-bit float). Convert a PyTorch checkpoint with scripts/convert_separator_ckpt.py.
    ///
    /// Examples:
    ///   aural separate --model resunet/ mix.wav --label Speech --label Dishes --out sep/
    ///   aural separate --model resunetk/ soundscapes/*.wav --label Speech --out sep/ --device cuda
    ///   aural separate --model audiosep/ mix.wav --conditions clap_query.safetensors --out sep/
    #[command(verbatim_doc_comment)]
    Separate(cli::separate::Args),
}

fn main() -> ExitCode {
    aural::runtime::malloc::keep_freed_memory();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Doctor(a) => cli::doctor::run(a),
        Cmd::Bench(a) => cli::bench::run(a),
        Cmd::Features(a) => cli::features::run(a),
        Cmd::Embed(a) => cli::embed::run(a),
        Cmd::Detect(a) => cli::detect::run(a),
        Cmd::Evaluate(a) => cli::evaluate::run(a),
        Cmd::EvaluateS5(a) => cli::evaluate_s5::run(a),
        Cmd::S5(a) => cli::s5::run(a),
        Cmd::Separate(a) => cli::separate::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aural: {e:#}");
            ExitCode::from(2)
        }
    }
}
