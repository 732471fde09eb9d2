//! The tape (Wengert list), `Var` and the gradient map.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use aural_runtime::ops::binary::add;
use aural_runtime::{Error, Result, Tensor};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A backward rule: given the gradient of the output and which inputs need a gradient, the
/// gradient of each input (`None` where not needed). Runs once.
pub(crate) type BackwardFn = Box<dyn FnOnce(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>>>;

struct Entry {
    op: &'static str,
    out: u64,
    inputs: Vec<u64>,
    in_shapes: Vec<Vec<usize>>,
    needs: Vec<bool>,
    back: BackwardFn,
}

struct TapeInner {
    entries: Vec<Entry>,
    recording: bool,
    /// Every op output and gradient is checked for NaN/inf (see [`Tape::check_finite`]).
    check: bool,
}

/// A tape: the list of recorded ops of one forward pass. Cheap to clone (a shared handle); not
/// `Send` (one tape per thread, as one training step runs on one thread driving the device).
#[derive(Clone)]
pub struct Tape(Rc<RefCell<TapeInner>>);

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.0.borrow();
        write!(f, "Tape({} entries, recording: {})", i.entries.len(), i.recording)
    }
}

/// Restores the tape's previous recording state when dropped (see [`Tape::no_grad`]).
pub struct NoGradGuard {
    tape: Tape,
    prev: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        self.tape.0.borrow_mut().recording = self.prev;
    }
}

impl Tape {
    /// An empty tape, recording.
    pub fn new() -> Tape {
        Tape(Rc::new(RefCell::new(TapeInner { entries: Vec::new(), recording: true, check: false })))
    }

    /// A constant (no gradient) attached to this tape, so ops on it record here.
    pub fn constant(&self, t: Tensor) -> Var {
        Var { id: next_id(), value: t, requires_grad: false, tape: Some(self.clone()), unrecorded: false }
    }

    /// A new leaf that requires a gradient, attached to this tape.
    pub fn var(&self, t: Tensor) -> Var {
        Var { id: next_id(), value: t, requires_grad: true, tape: Some(self.clone()), unrecorded: false }
    }

    /// The same Var (same id, so its gradient is found under it) attached to this tape.
    pub fn watch(&self, v: &Var) -> Var {
        Var { tape: Some(self.clone()), ..v.clone() }
    }

    /// Stops recording until the guard is dropped: ops run, nothing is recorded, results need no
    /// gradient.
    pub fn no_grad(&self) -> NoGradGuard {
        let prev = std::mem::replace(&mut self.0.borrow_mut().recording, false);
        NoGradGuard { tape: self.clone(), prev }
    }

    /// A tape on which every op checks its output, and the backward sweep every gradient, for NaN
    /// and inf: the first one found is an error naming the op (a diagnosis mode: it reads every
    /// value back to the host). Used to name the op behind a non-finite loss.
    pub fn check_finite(&self, on: bool) {
        self.0.borrow_mut().check = on;
    }

    pub fn is_recording(&self) -> bool {
        self.0.borrow().recording
    }

    /// Number of recorded entries.
    pub fn len(&self) -> usize {
        self.0.borrow().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every recorded entry (and the tensors their closures hold).
    pub fn clear(&self) {
        self.0.borrow_mut().entries.clear();
    }

    /// Reverse-mode sweep from a one-element `loss` (seed 1). Consumes the recorded entries (the tape
    /// is empty afterwards and can record the next step) and returns the gradients of the leaves
    /// (Vars that no recorded op produced). A NaN/inf loss is an error; a gradient whose shape differs
    /// from its input's is an error naming the op.
    pub fn backward(&self, loss: &Var) -> Result<Grads> {
        if loss.value.numel() != 1 {
            return Err(Error::Msg(format!("backward: the loss must have one element, it has shape {:?}", loss.value.shape())));
        }
        let lv = loss.value.to_vec()?[0];
        if !lv.is_finite() {
            return Err(Error::Msg(format!("backward: the loss is {lv}; refusing to compute gradients (training must not continue)")));
        }
        let entries = std::mem::take(&mut self.0.borrow_mut().entries);
        let check = self.0.borrow().check;
        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(loss.id, Tensor::full(loss.value.shape(), 1.0, loss.value.device())?);
        // AURAL_PROFILE_BACKWARD=1: seconds per op kind of this sweep on stderr (host clock: on GPU
        // devices kernels are asynchronous, so the times are launch times unless a rule syncs).
        let mut prof: Option<HashMap<&'static str, (f64, usize)>> = std::env::var_os("AURAL_PROFILE_BACKWARD").map(|_| HashMap::new());
        for e in entries.into_iter().rev() {
            let Some(g) = grads.remove(&e.out) else { continue };
            let t0 = prof.as_ref().map(|_| std::time::Instant::now());
            let gs = (e.back)(&g, &e.needs)?;
            if let (Some(p), Some(t0)) = (prof.as_mut(), t0) {
                let s = p.entry(e.op).or_default();
                s.0 += t0.elapsed().as_secs_f64();
                s.1 += 1;
            }
            for (i, gi) in gs.into_iter().enumerate() {
                if !e.needs[i] {
                    continue;
                }
                let Some(gi) = gi else { continue };
                if check {
                    if let Some((j, v)) = first_nonfinite(&gi)? {
                        return Err(Error::Msg(format!("backward of {}: the gradient of input {i} {:?} is {v} at flat index {j}", e.op, gi.shape())));
                    }
                }
                if gi.shape() != e.in_shapes[i].as_slice() {
                    return Err(Error::Msg(format!("backward of {}: gradient of input {i} has shape {:?}, the input {:?}", e.op, gi.shape(), e.in_shapes[i])));
                }
                accumulate(&mut grads, e.inputs[i], gi)?;
            }
        }
        if let Some(p) = prof {
            let mut rows: Vec<_> = p.into_iter().collect();
            rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
            let total: f64 = rows.iter().map(|r| r.1 .0).sum();
            eprintln!("backward: {total:.3} s in rules");
            for (op, (t, n)) in rows {
                eprintln!("  {op:<20} {t:8.3} s  {n:5} calls");
            }
        }
        Ok(Grads { map: grads })
    }
}

/// The first NaN/inf of a tensor: (flat index, value).
fn first_nonfinite(t: &Tensor) -> Result<Option<(usize, f32)>> {
    Ok(t.to_vec()?.into_iter().enumerate().find(|(_, v)| !v.is_finite()))
}

fn accumulate(grads: &mut HashMap<u64, Tensor>, id: u64, g: Tensor) -> Result<()> {
    match grads.remove(&id) {
        Some(prev) => {
            grads.insert(id, add(&prev, &g)?);
        }
        None => {
            grads.insert(id, g);
        }
    }
    Ok(())
}

/// A value in the graph: a tensor, a unique id, whether it needs a gradient, and the tape it records
/// on (if any). Cloning is cheap (the tensor's storage is shared).
#[derive(Clone)]
pub struct Var {
    id: u64,
    value: Tensor,
    requires_grad: bool,
    tape: Option<Tape>,
    /// Computed by an op from inputs that needed a gradient while none of them was on a tape
    /// (inference with parameters): fine on its own, but its gradient can never reach those
    /// parameters, so using it in an op that records on a tape is an error (see [`record`]).
    unrecorded: bool,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var(#{} {:?} on {}, requires_grad: {})", self.id, self.value.shape(), self.value.device(), self.requires_grad)
    }
}

impl Var {
    /// A constant on no tape (inference).
    pub fn constant(t: Tensor) -> Var {
        Var { id: next_id(), value: t, requires_grad: false, tape: None, unrecorded: false }
    }

    /// A leaf that requires a gradient, on no tape (a parameter; attach with [`Tape::watch`] or by
    /// combining it with a Var that is on a tape).
    pub fn leaf(t: Tensor) -> Var {
        Var { id: next_id(), value: t, requires_grad: true, tape: None, unrecorded: false }
    }

    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn value(&self) -> &Tensor {
        &self.value
    }
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }
    pub fn requires_grad(&self) -> bool {
        self.requires_grad
    }
    pub fn tape(&self) -> Option<&Tape> {
        self.tape.as_ref()
    }

    /// The same value as a constant (no gradient flows through it), still on the tape.
    pub fn detach(&self) -> Var {
        Var { id: next_id(), value: self.value.clone(), requires_grad: false, tape: self.tape.clone(), unrecorded: false }
    }

    /// Same id and flags, new value (an optimizer step).
    pub(crate) fn with_value(&self, t: Tensor) -> Var {
        Var { value: t, ..self.clone() }
    }
}

/// Whether [`record`] with these inputs will append an entry (some input needs a gradient and their
/// tape is recording) — for ops whose forward keeps extra tensors only for the backward.
pub(crate) fn will_record(inputs: &[&Var]) -> bool {
    inputs.iter().any(|v| v.requires_grad) && inputs.iter().find_map(|v| v.tape.as_ref()).is_some_and(|t| t.is_recording())
}

/// Records the op that produced `value` from `inputs`: appends a tape entry when some input needs a
/// gradient and the inputs' tape is recording, else returns a Var that needs none.
pub(crate) fn record(
    op: &'static str,
    inputs: &[&Var],
    value: Tensor,
    back: impl FnOnce(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + 'static,
) -> Result<Var> {
    let mut tape: Option<&Tape> = None;
    for v in inputs {
        if let Some(t) = &v.tape {
            match tape {
                None => tape = Some(t),
                Some(t0) if Rc::ptr_eq(&t0.0, &t.0) => {}
                Some(_) => return Err(Error::Msg(format!("{op}: inputs are on two different tapes"))),
            }
        }
    }
    let needs: Vec<bool> = inputs.iter().map(|v| v.requires_grad).collect();
    let id = next_id();
    let tape = tape.cloned();
    let recording = tape.as_ref().is_some_and(|t| t.is_recording());
    if recording {
        if let Some(i) = inputs.iter().position(|v| v.unrecorded) {
            // PyTorch would have recorded the earlier op; here nothing could (no tape), so the
            // gradient would silently stop at this input.
            return Err(Error::Msg(format!(
                "{op}: input {i} {:?} was computed from parameters on no tape, so no gradient can reach them — attach the parameters with Tape::watch before the first op on them (or detach() the input if it is meant to be constant)",
                inputs[i].shape()
            )));
        }
    }
    if let Some(t) = &tape {
        if t.0.borrow().check {
            if let Some((j, v)) = first_nonfinite(&value)? {
                return Err(Error::Msg(format!(
                    "{op}: the output {:?} is {v} at flat index {j} (the first op of this pass that produced NaN/inf)",
                    value.shape()
                )));
            }
        }
    }
    let rec = needs.iter().any(|&b| b) && recording;
    let unrecorded = tape.is_none() && (needs.iter().any(|&b| b) || inputs.iter().any(|v| v.unrecorded));
    if rec {
        let t = tape.as_ref().unwrap();
        t.0.borrow_mut().entries.push(Entry {
            op,
            out: id,
            inputs: inputs.iter().map(|v| v.id).collect(),
            in_shapes: inputs.iter().map(|v| v.shape().to_vec()).collect(),
            needs,
            back: Box::new(back),
        });
    }
    Ok(Var { id, value, requires_grad: rec, tape, unrecorded })
}

/// Gradients by Var id (the leaves of one backward sweep).
#[derive(Debug, Default, Clone)]
pub struct Grads {
    map: HashMap<u64, Tensor>,
}

impl Grads {
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        self.map.get(&v.id)
    }
    pub fn get_id(&self, id: u64) -> Option<&Tensor> {
        self.map.get(&id)
    }
    pub fn insert_id(&mut self, id: u64, g: Tensor) {
        self.map.insert(id, g);
    }
    pub fn remove(&mut self, v: &Var) -> Option<Tensor> {
        self.map.remove(&v.id)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
