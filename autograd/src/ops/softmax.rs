//! Softmax over the last dim. Backward: `dx = y·(g − Σ_j y·g)` (kernel `softmax_bwd_f32_v1` on GPU
//! devices, `runtime::ops::softmax::softmax_bwd`).

use aural_runtime::ops::softmax as rs;
use aural_runtime::Result;

use crate::tape::record;
use crate::Var;

pub fn softmax(x: &Var) -> Result<Var> {
    let y = rs::softmax(x.value())?;
    let yv = y.clone();
    record("softmax", &[x], y, move |g, _| Ok(vec![Some(rs::softmax_bwd(&yv, g)?)]))
}
