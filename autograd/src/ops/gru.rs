//! One GRU layer, `torch.nn.GRU(I, H, batch_first=True, bidirectional)` with h0 = 0: x (B, T, I) →
//! (B, T, D·H), the reverse direction's output in columns H..2H. A stacked GRU is one call per layer.
//!
//! Forward: `runtime::ops::gru::gru_train_forward` when a gradient will be recorded (it also keeps
//! every step's pre-activations xp, gh), else the plain inference op. Backward:
//! `runtime::ops::gru::gru_bwd` — backpropagation through time (the recurrence on the CPU or in the
//! kernel `gru_bwd_f32_v1`), then dx, dW_ih, dW_hh and the biases as GEMMs over all steps.

use aural_runtime::ops::gru as rg;
use aural_runtime::{Error, Result};

use crate::tape::{record, will_record};
use crate::{ParamStore, Var};

/// The weights of one direction (torch names and layouts: `weight_ih_l{k}[_reverse]` (3H, I),
/// `weight_hh_l{k}` (3H, H), `bias_ih_l{k}`, `bias_hh_l{k}` (3H); gate rows r | z | n).
#[derive(Debug, Clone)]
pub struct GruDirParams {
    pub weight_ih: Var,
    pub weight_hh: Var,
    pub bias_ih: Option<Var>,
    pub bias_hh: Option<Var>,
}

/// The weights of one layer: `dirs[0]` forward, `dirs[1]` reverse (when bidirectional).
#[derive(Debug, Clone)]
pub struct GruParams {
    pub dirs: Vec<GruDirParams>,
}

impl GruParams {
    /// Layer `layer` of a torch.nn.GRU state dict in `store` under `prefix` (e.g. `"gru."`): names
    /// `{prefix}weight_ih_l{layer}[_reverse]` …; biases are optional (both absent: `bias=False`).
    pub fn from_store(store: &ParamStore, prefix: &str, layer: usize, bidirectional: bool) -> Result<GruParams> {
        let mut dirs = Vec::new();
        for suffix in if bidirectional { &["", "_reverse"][..] } else { &[""][..] } {
            let name = |w: &str| format!("{prefix}{w}_l{layer}{suffix}");
            let opt = |w: &str| if store.contains(&name(w)) { store.get(&name(w)).map(Some) } else { Ok(None) };
            dirs.push(GruDirParams {
                weight_ih: store.get(&name("weight_ih"))?,
                weight_hh: store.get(&name("weight_hh"))?,
                bias_ih: opt("bias_ih")?,
                bias_hh: opt("bias_hh")?,
            });
        }
        Ok(GruParams { dirs })
    }

    fn inputs(&self) -> Vec<&Var> {
        let mut v = Vec::new();
        for d in &self.dirs {
            v.push(&d.weight_ih);
            v.push(&d.weight_hh);
            v.extend(d.bias_ih.as_ref());
            v.extend(d.bias_hh.as_ref());
        }
        v
    }

    fn weights(&self) -> Result<rg::GruWeights> {
        let dirs = self
            .dirs
            .iter()
            .map(|d| rg::GruDirWeights {
                w_ih: d.weight_ih.value().clone(),
                w_hh: d.weight_hh.value().clone(),
                b_ih: d.bias_ih.as_ref().map(|b| b.value().clone()),
                b_hh: d.bias_hh.as_ref().map(|b| b.value().clone()),
            })
            .collect();
        rg::GruWeights::new(vec![dirs])
    }
}

/// One (bi)GRU layer with h0 = 0: x (B, T, I) → (B, T, D·H). `bidirectional` must match `params`.
pub fn gru(x: &Var, params: &GruParams, bidirectional: bool) -> Result<Var> {
    if params.dirs.len() != if bidirectional { 2 } else { 1 } {
        return Err(Error::Msg(format!("gru: bidirectional = {bidirectional} but {} direction(s) of parameters", params.dirs.len())));
    }
    let w = params.weights()?;
    let mut inputs = vec![x];
    inputs.extend(params.inputs());
    if !will_record(&inputs) {
        let y = rg::gru(x.value(), &w, None, bidirectional)?;
        return record("gru", &inputs, y, |_, _| unreachable!("nothing recorded"));
    }
    let (y, saved) = rg::gru_train_forward(x.value(), &w, bidirectional)?;
    let (xv, yv) = (x.value().clone(), y.clone());
    let has_b: Vec<(bool, bool)> = params.dirs.iter().map(|d| (d.bias_ih.is_some(), d.bias_hh.is_some())).collect();
    record("gru", &inputs, y, move |g, _| {
        let gr = rg::gru_bwd(&xv, &w, &yv, &saved, g)?;
        let mut out = vec![Some(gr.dx)];
        for (dg, (bi, bh)) in gr.dirs.into_iter().zip(has_b) {
            out.push(Some(dg.dw_ih));
            out.push(Some(dg.dw_hh));
            if bi {
                out.push(Some(dg.db_ih));
            }
            if bh {
                out.push(Some(dg.db_hh));
            }
        }
        Ok(out)
    })
}
