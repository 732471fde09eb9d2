//! Optimizers: AdamW with parameter groups (`torch.optim.AdamW` semantics), a layer-wise LR decay
//! helper, and gradient clipping by global norm (`torch.nn.utils.clip_grad_norm_`).

use std::collections::HashMap;

use aural_runtime::ops::adamw::{adamw_step, adamw_step_amsgrad, AdamWHyper};
use aural_runtime::ops::binary::mul;
use aural_runtime::ops::reduce::sum;
use aural_runtime::ops::unary::affine;
use aural_runtime::{DType, Error, Result, Tensor};

use crate::{Grads, ParamStore};

/// Parameters sharing a learning rate and weight decay (torch's param_groups).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamGroup {
    pub names: Vec<String>,
    pub lr: f64,
    pub weight_decay: f64,
}

impl ParamGroup {
    pub fn new(names: Vec<String>, lr: f64, weight_decay: f64) -> ParamGroup {
        ParamGroup { names, lr, weight_decay }
    }
}

struct State {
    step: u64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// amsgrad's running max of exp_avg_sq (None when amsgrad is off).
    max_exp_avg_sq: Option<Tensor>,
}

/// One parameter's optimizer state as [`AdamW::state`] lists it (for checkpoints).
#[derive(Debug, Clone, Copy)]
pub struct ParamState<'a> {
    pub name: &'a str,
    pub step: u64,
    pub exp_avg: &'a Tensor,
    pub exp_avg_sq: &'a Tensor,
    /// Present when the parameter was last updated with amsgrad on.
    pub max_exp_avg_sq: Option<&'a Tensor>,
}

/// AdamW: per parameter, `p ← p·(1 − lr·wd)`, then Adam with bias corrections and eps added to
/// √v̂ (torch.optim.AdamW; amsgrad off by default, see [`AdamW::with_amsgrad`]). One fused kernel
/// launch (`adamw_fwd_f32_v1`, or `adamw_amsgrad_fwd_f32_v1`) per parameter on GPU devices; rayon on
/// the CPU. Parameters without a gradient are skipped (as torch skips `p.grad is None`), and their
/// step count does not advance.
pub struct AdamW {
    pub groups: Vec<ParamGroup>,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// torch's `amsgrad`: the denominator uses the running max of exp_avg_sq.
    pub amsgrad: bool,
    state: HashMap<String, State>,
}

impl AdamW {
    /// torch's defaults: betas (0.9, 0.999), eps 1e-8. A name in two groups is an error at `step`.
    pub fn new(groups: Vec<ParamGroup>) -> AdamW {
        AdamW { groups, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false, state: HashMap::new() }
    }

    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> AdamW {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    pub fn with_eps(mut self, eps: f64) -> AdamW {
        self.eps = eps;
        self
    }

    /// torch's `AdamW(amsgrad=…)`: keeps `max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)` per
    /// parameter (zeros at the start, as torch) and divides by its square root instead of v's.
    pub fn with_amsgrad(mut self, amsgrad: bool) -> AdamW {
        self.amsgrad = amsgrad;
        self
    }

    /// The step count of a parameter (0 before its first update).
    pub fn step_count(&self, name: &str) -> u64 {
        self.state.get(name).map_or(0, |s| s.step)
    }

    /// The optimizer state of every parameter that has one, by name (for checkpoints).
    pub fn state(&self) -> Vec<ParamState<'_>> {
        let mut v: Vec<_> = self
            .state
            .iter()
            .map(|(k, s)| ParamState {
                name: k.as_str(),
                step: s.step,
                exp_avg: &s.exp_avg,
                exp_avg_sq: &s.exp_avg_sq,
                max_exp_avg_sq: s.max_exp_avg_sq.as_ref(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(b.name));
        v
    }

    /// Restores one parameter's state (a resumed run). `max_exp_avg_sq` is amsgrad's running max.
    /// With amsgrad on and no max given (a checkpoint of a run without amsgrad), the max starts from
    /// zeros at the next step, as for a fresh parameter (torch would fail on the missing key); with
    /// amsgrad off a given max is kept until the next step, which drops it.
    pub fn set_state(&mut self, name: &str, step: u64, exp_avg: Tensor, exp_avg_sq: Tensor, max_exp_avg_sq: Option<Tensor>) -> Result<()> {
        let shapes_differ = exp_avg.shape() != exp_avg_sq.shape() || max_exp_avg_sq.as_ref().is_some_and(|x| x.shape() != exp_avg.shape());
        if shapes_differ {
            return Err(Error::Msg(format!(
                "AdamW state of '{name}': moments of shapes {:?} and {:?}{}",
                exp_avg.shape(),
                exp_avg_sq.shape(),
                max_exp_avg_sq.as_ref().map_or(String::new(), |x| format!(", max_exp_avg_sq {:?}", x.shape()))
            )));
        }
        self.state.insert(name.to_string(), State { step, exp_avg, exp_avg_sq, max_exp_avg_sq });
        Ok(())
    }

    /// Sets every group's lr to `f(group index, current lr)` (schedules).
    pub fn map_lr(&mut self, f: impl Fn(usize, f64) -> f64) {
        for (i, g) in self.groups.iter_mut().enumerate() {
            g.lr = f(i, g.lr);
        }
    }

    /// One update of every parameter of every group that has a gradient. Fails, updating nothing, when
    /// any of those gradients is non-finite (the error names the parameters) or a group names a
    /// parameter the store lacks.
    pub fn step(&mut self, store: &mut ParamStore, grads: &Grads) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for g in &self.groups {
            for n in &g.names {
                store.get(n)?;
                if !seen.insert(n.as_str()) {
                    return Err(Error::Msg(format!("AdamW: parameter '{n}' is in two parameter groups")));
                }
            }
        }
        store.check_finite(grads)?;
        for g in &self.groups {
            for name in &g.names {
                let var = store.get(name)?;
                let Some(grad) = grads.get(&var) else { continue };
                let p = var.value();
                let st = match self.state.remove(name) {
                    Some(s) => s,
                    None => State {
                        step: 0,
                        exp_avg: Tensor::zeros(p.shape(), DType::F32, p.device())?,
                        exp_avg_sq: Tensor::zeros(p.shape(), DType::F32, p.device())?,
                        max_exp_avg_sq: None,
                    },
                };
                let step = st.step + 1;
                let h = AdamWHyper { lr: g.lr, beta1: self.beta1, beta2: self.beta2, eps: self.eps, weight_decay: g.weight_decay, step };
                let out = if self.amsgrad {
                    let vmax = match st.max_exp_avg_sq {
                        Some(x) => x,
                        None => Tensor::zeros(p.shape(), DType::F32, p.device())?,
                    };
                    adamw_step_amsgrad(p, grad, &st.exp_avg, &st.exp_avg_sq, &vmax, &h)?
                } else {
                    adamw_step(p, grad, &st.exp_avg, &st.exp_avg_sq, &h)?
                };
                store.set(name, out.param)?;
                let state = State { step, exp_avg: out.exp_avg, exp_avg_sq: out.exp_avg_sq, max_exp_avg_sq: out.max_exp_avg_sq };
                self.state.insert(name.clone(), state);
            }
        }
        Ok(())
    }
}

/// `torch.nn.utils.clip_grad_norm_(params, max_norm)` (L2): the total norm is the norm of the
/// per-parameter gradient norms; every gradient is multiplied by min(1, max_norm / (total + 1e-6)).
/// Returns the total norm (before clipping). A non-finite norm is an error naming the parameters with
/// non-finite gradients (torch would silently scale by NaN unless error_if_nonfinite).
pub fn clip_grad_norm(store: &ParamStore, grads: &mut Grads, max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    let mut ids = Vec::new();
    for (_, v) in store.iter() {
        if let Some(g) = grads.get(v) {
            let sq = sum(&mul(g, g)?.reshape(&[g.numel()])?, 0, false)?.to_vec()?[0] as f64;
            total += sq;
            ids.push(v.id());
        }
    }
    let total = total.sqrt();
    if !total.is_finite() {
        store.check_finite(grads)?;
        return Err(Error::Msg(format!("clip_grad_norm: the total gradient norm is {total}")));
    }
    let coef = (max_norm / (total + 1e-6)).min(1.0) as f32;
    for id in ids {
        let g = grads.get_id(id).unwrap();
        let scaled = affine(g, coef, 0.0)?;
        grads.insert_id(id, scaled);
    }
    Ok(total)
}

/// Layer-wise learning-rate decay (BEiT / AST fine-tuning): parameter `name` at layer
/// `layer_of(name)` ∈ 0..=num_layers + 1 (0: embeddings, i + 1: block i, num_layers + 1: head and new
/// parts) gets lr = base_lr · decay^(num_layers + 1 − layer). Returns one group per layer that has
/// parameters; `no_decay(name)` selects parameters with weight decay 0 (biases, norms), which get
/// their own groups.
pub fn layerwise_lr_groups(
    store: &ParamStore,
    base_lr: f64,
    decay: f64,
    num_layers: usize,
    weight_decay: f64,
    layer_of: impl Fn(&str) -> usize,
    no_decay: impl Fn(&str) -> bool,
) -> Vec<ParamGroup> {
    let mut groups: std::collections::BTreeMap<(usize, bool), Vec<String>> = Default::default();
    for name in store.names() {
        let layer = layer_of(&name).min(num_layers + 1);
        groups.entry((layer, no_decay(&name))).or_default().push(name);
    }
    groups
        .into_iter()
        .map(|((layer, nd), names)| ParamGroup {
            names,
            lr: base_lr * decay.powi((num_layers + 1 - layer) as i32),
            weight_decay: if nd { 0.0 } else { weight_decay },
        })
        .collect()
}

/// The layer of an AST (HF `ASTModel`) parameter for [`layerwise_lr_groups`]: `embeddings.*` → 0,
/// `encoder.layer.{i}.*` → i + 1, anything else (final layernorm, heads, new parts) → num_layers + 1.
/// An `audio_spectrogram_transformer.` prefix is ignored.
pub fn ast_layer_id(name: &str, num_layers: usize) -> usize {
    let n = name.strip_prefix("audio_spectrogram_transformer.").unwrap_or(name);
    if n.starts_with("embeddings.") {
        return 0;
    }
    if let Some(rest) = n.strip_prefix("encoder.layer.") {
        if let Some(i) = rest.split('.').next().and_then(|s| s.parse::<usize>().ok()) {
            return (i + 1).min(num_layers + 1);
        }
    }
    num_layers + 1
}
