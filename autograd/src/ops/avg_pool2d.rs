//! Average pooling with kernel = stride (ResUNet30's encoder downsampling). Backward:
//! `runtime::ops::pool::avg_pool2d_bwd` (kernel `avg_pool2d_bwd_f32_v1` on GPU devices): each input
//! element gets dy of its window / (kh·kw); the rows/columns the floor dropped get 0.

use aural_runtime::ops::pool as rp;
use aural_runtime::Result;

use crate::tape::record;
use crate::Var;

/// `F.avg_pool2d(x, kernel_size=(kh, kw))`, x (B, C, H, W) → (B, C, ⌊H / kh⌋, ⌊W / kw⌋).
pub fn avg_pool2d(x: &Var, kernel: (usize, usize)) -> Result<Var> {
    let y = rp::avg_pool2d(x.value(), kernel)?;
    let shape = x.shape().to_vec();
    record("avg_pool2d", &[x], y, move |g, _| Ok(vec![Some(rp::avg_pool2d_bwd(g, &shape, kernel)?)]))
}
